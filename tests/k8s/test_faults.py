"""Faults, injected for real on the test cluster: the API server restarted mid-task, the
connections from the pods to the API server reset, the taskmaster evicted, the node drained,
the node's heartbeats stopped, a quota that refuses the volume, no default StorageClass. Each
test restores the cluster before it ends. A task that must end PREEMPTED asks for one attempt
(`max_attempts`); with attempts left, an eviction is retried as a new attempt."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tesk.backends.kubernetes import names
from tesk.store.sql import SqlStore
from tesk.tes.states import State
from tests.k8s.backend_env import Deployment, deployment, task
from tests.k8s.cluster.cluster import STORAGE_CLASS
from tests.k8s.cluster.layout import NODE_NAME
from tests.k8s.realcluster import TestCluster

TASKMASTERS = f"{names.LABEL_COMPONENT}={names.COMPONENT_TASKMASTER}"
ONE_ATTEMPT = {"backend_parameters": {"max_attempts": "1"}}
DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"


@pytest.fixture
def env(cluster: TestCluster, tmp_path: Path) -> Iterator[Deployment]:
    store = SqlStore(f"sqlite:///{tmp_path / 'tesk.db'}")
    with deployment(cluster, store=store, cancel_timeout_s=5) as running:
        yield running
    store.close()


def system_logs(env: Deployment, task_id: str) -> str:
    log = env.record(task_id).log
    return "\n".join(log.system_logs or []) if log else ""


def running_pod(cluster: TestCluster, name: str) -> bool:
    pod = cluster.get("pods", name) or {}
    return (pod.get("status") or {}).get("phase") == "Running"


def taskmaster_pods(cluster: TestCluster, task_id: str) -> list[dict[str, object]]:
    return cluster.objects("pods", labelSelector=f"{TASKMASTERS},{names.LABEL_TASK}={task_id}")


def test_the_api_server_restarted_mid_task(env: Deployment, cluster: TestCluster) -> None:
    task_id = env.submit(task(["sh", "-c", "sleep 12; echo survived"]))
    executor = names.TaskNames(task_id).executor_pod(0)
    cluster.wait_for(lambda: running_pod(cluster, executor))
    cluster.cluster.restart("kube-apiserver")
    record = env.wait_state(task_id, timeout=120)
    assert record.state == State.COMPLETE, system_logs(env, task_id)
    assert record.log is not None
    assert record.log.logs[0].stdout == "survived\n"


def test_the_taskmasters_connections_to_the_api_server_cut_mid_task(
    env: Deployment, cluster: TestCluster
) -> None:
    task_id = env.submit(task(["sh", "-c", "sleep 15; echo through"]))
    executor = names.TaskNames(task_id).executor_pod(0)
    cluster.wait_for(lambda: running_pod(cluster, executor))
    cluster.cluster.cut_pods_from_api()
    try:
        time.sleep(10)
    finally:
        cluster.cluster.cut_pods_from_api(False)
    record = env.wait_state(task_id, timeout=120)
    assert record.state == State.COMPLETE, system_logs(env, task_id)
    assert record.log is not None
    assert record.log.logs[0].stdout == "through\n"


def test_an_evicted_taskmaster_is_replaced_and_the_task_completes(
    env: Deployment, cluster: TestCluster
) -> None:
    task_id = env.submit(task(["sh", "-c", "sleep 10; echo adopted"]))
    executor = names.TaskNames(task_id).executor_pod(0)
    cluster.wait_for(lambda: running_pod(cluster, executor))
    (first,) = taskmaster_pods(cluster, task_id)
    cluster.evict(first["metadata"]["name"])  # type: ignore[index]
    record = env.wait_state(task_id, timeout=120)
    assert record.state == State.COMPLETE, system_logs(env, task_id)
    assert record.log is not None
    assert record.log.logs[0].stdout == "adopted\n"
    names_seen = {p["metadata"]["name"] for p in taskmaster_pods(cluster, task_id)}  # type: ignore[index]
    assert first["metadata"]["name"] not in names_seen  # type: ignore[index]


def drain(cluster: TestCluster, task_id: str) -> None:
    """`kubectl drain`: cordon the node, then evict every pod of the task through the Eviction
    API; the node comes back (uncordoned) once its pods are gone, as after maintenance."""
    executor = names.TaskNames(task_id).executor_pod(0)
    node_path = f"/api/v1/nodes/{NODE_NAME}"
    selector = f"{names.LABEL_TASK}={task_id}"
    cluster.cluster.request("PATCH_MERGE", node_path, {"spec": {"unschedulable": True}})
    try:
        for pod in cluster.objects("pods", labelSelector=selector):
            cluster.evict(pod["metadata"]["name"])
        cluster.wait_for(lambda: cluster.get("pods", executor) is None, timeout=90)
    finally:
        cluster.cluster.request("PATCH_MERGE", node_path, {"spec": {"unschedulable": False}})


def test_a_drained_node_preempts_the_task_and_never_cancels_it(
    env: Deployment, cluster: TestCluster
) -> None:
    task_id = env.submit(task(["sleep", "60"], resources=ONE_ATTEMPT))
    executor = names.TaskNames(task_id).executor_pod(0)
    cluster.wait_for(lambda: running_pod(cluster, executor))
    drain(cluster, task_id)
    record = env.wait_state(task_id, timeout=120)
    logs = system_logs(env, task_id)
    assert record.state == State.PREEMPTED, logs
    assert "EvictionByEvictionAPI" in logs or "is gone" in logs, logs
    assert record.log is not None
    assert record.log.logs == []  # the command was not run a second time
    assert record.attempts == ()


def test_a_drained_node_retries_the_task_as_a_new_attempt_that_completes(
    env: Deployment, cluster: TestCluster
) -> None:
    task_id = env.submit(task(["sh", "-c", "sleep 8; echo second"]))
    first = names.TaskNames(task_id)
    cluster.wait_for(lambda: running_pod(cluster, first.executor_pod(0)))
    drain(cluster, task_id)
    record = env.wait_state(task_id, timeout=180)

    assert record.state == State.COMPLETE, (system_logs(env, task_id), record.attempts)
    [lost] = record.attempts
    assert lost.logs == []
    note = (lost.system_logs or [])[-1]
    assert note.startswith("attempt 1 lost its capacity ("), lost.system_logs
    assert note.endswith("; retried as attempt 2"), lost.system_logs
    assert "EvictionByEvictionAPI" in note or "is gone" in note, note
    assert record.log is not None
    assert record.log.logs[0].stdout == "second\n"
    for log in (lost, record.log):
        assert "usage.wall_seconds" in (log.metadata or {})
    # GetTask serves both attempts, in order.
    full = env.service.get(task_id, "FULL")
    assert [len(log["logs"]) for log in full["logs"]] == [0, 1]
    # The first attempt's Job went with everything it owned; the second ran under its own.
    second = names.TaskNames(task_id, 2)
    cluster.wait_for(lambda: cluster.get("jobs", first.job) is None, timeout=60)
    assert cluster.get("configmaps", first.status_configmap) is None
    job = cluster.get("jobs", second.job)
    assert job is not None
    assert job["metadata"]["labels"][names.LABEL_ATTEMPT] == "2"


def test_a_lost_node_preempts_its_task_and_a_cancel_still_ends(
    env: Deployment, cluster: TestCluster
) -> None:
    lost = env.submit(task(["sleep", "300"], resources=ONE_ATTEMPT))
    cancelled = env.submit(task(["sleep", "300"]))
    for task_id in (lost, cancelled):
        pod = names.TaskNames(task_id).executor_pod(0)
        cluster.wait_for(lambda pod=pod: running_pod(cluster, pod))  # type: ignore[misc]
    cluster.cluster.pause("kubelet")  # its heartbeats stop; its containers go on
    try:
        env.service.cancel(cancelled)
        # The foreground deletion waits on pods no kubelet ends: let go after cancel_timeout_s.
        assert env.wait_state(cancelled, timeout=60).state == State.CANCELED
        # Node lifecycle: NotReady after the grace period, then its pods are evicted.
        record = env.wait_state(lost, timeout=180)
        assert record.state == State.PREEMPTED, system_logs(env, lost)
    finally:
        cluster.cluster.resume("kubelet")
    cluster.wait_for(
        lambda: not cluster.objects("pods", labelSelector=f"{names.LABEL_TASK}={cancelled}"),
        timeout=120,
    )


def test_a_quota_that_refuses_the_volume_fails_the_task_at_once(cluster: TestCluster) -> None:
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "no-volumes"},
            "spec": {"hard": {"persistentvolumeclaims": "0"}},
        }
    )
    with deployment(cluster) as env:
        started = time.monotonic()
        task_id = env.submit(task(["true"]))
        record = env.wait_state(task_id, timeout=120)
        assert record.state == State.SYSTEM_ERROR
        assert "exceeded quota" in system_logs(env, task_id)
        assert time.monotonic() - started < 60  # not at the pending timeout


def test_a_taskmaster_pod_the_api_server_refuses_fails_the_task_at_once(
    cluster: TestCluster,
) -> None:
    # Beyond the namespace's LimitRange: the Job controller cannot create the pod.
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "LimitRange",
            "metadata": {"name": "small-pods"},
            "spec": {"limits": [{"type": "Container", "max": {"memory": "128Mi"}}]},
        }
    )
    with deployment(cluster, pending_timeout_s=600) as env:
        started = time.monotonic()
        task_id = env.submit(task(["true"]))
        record = env.wait_state(task_id, timeout=90)
    assert record.state == State.SYSTEM_ERROR
    logs = system_logs(env, task_id)
    assert "the taskmaster pod was refused by the API server" in logs
    assert "maximum memory usage per Container is 128Mi" in logs
    assert time.monotonic() - started < 60  # not at the pending timeout


def test_no_default_storage_class_is_a_clear_system_error(cluster: TestCluster) -> None:
    path = f"/apis/storage.k8s.io/v1/storageclasses/{STORAGE_CLASS}"
    patch = {"metadata": {"annotations": {DEFAULT_CLASS: "false"}}}
    cluster.cluster.request("PATCH_MERGE", path, patch)
    try:
        with deployment(cluster, pending_timeout_s=15) as env:
            task_id = env.submit(task(["true"]))
            record = env.wait_state(task_id, timeout=120)
    finally:
        cluster.cluster.request(
            "PATCH_MERGE", path, {"metadata": {"annotations": {DEFAULT_CLASS: "true"}}}
        )
    assert record.state == State.SYSTEM_ERROR
    assert "PersistentVolumeClaim" in system_logs(env, task_id)
