"""End to end over the fake cluster: TesService -> Kubernetes backend -> taskmaster Job ->
executor (and filer) pods -> status ConfigMap -> reconciler -> store.

Everything goes through the real `kubernetes` client; the taskmaster is `tesk taskmaster` in a
fake-kubelet pod. See docs/testing-kubernetes.md for what the fake does not show.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tesk.backends.kubernetes import KubernetesBackend, names
from tesk.store.sql import SqlStore
from tesk.tes.states import State
from tests.k8s.backend_env import Deployment, deployment, make_service, task
from tests.k8s.fakecluster import (
    Evicted,
    FakeCluster,
    ImagePullFailure,
    NodeLost,
    OOMKilled,
    Unschedulable,
    labels_match,
)

EXECUTORS = f"{names.LABEL_COMPONENT}={names.COMPONENT_EXECUTOR}"
TASKMASTERS = f"{names.LABEL_COMPONENT}={names.COMPONENT_TASKMASTER}"
KINDS = ("jobs", "pods", "persistentvolumeclaims", "configmaps")


@pytest.fixture
def cluster() -> Iterator[FakeCluster]:
    if shutil.which("bwrap") is None:
        pytest.skip("the fake kubelet runs pods in bubblewrap: apt-get install bubblewrap")
    with FakeCluster() as fake:
        yield fake
        assert fake.errors == [], "\n".join(fake.errors)


@pytest.fixture
def env(cluster: FakeCluster, tmp_path: Path) -> Iterator[Deployment]:
    store = SqlStore(f"sqlite:///{tmp_path / 'tesk.db'}")
    with deployment(cluster, store=store) as running:
        yield running
    store.close()


def leftovers(cluster: FakeCluster, task_id: str) -> list[str]:
    found = []
    for kind in KINDS:
        for obj in cluster.objects(kind, cluster.namespace):
            if (obj["metadata"].get("labels") or {}).get(names.LABEL_TASK) == task_id:
                found.append(f"{kind}/{obj['metadata']['name']}")
    return found


def system_logs(env: Deployment, task_id: str) -> str:
    log = env.record(task_id).log
    return "\n".join(log.system_logs or []) if log else ""


def test_a_task_completes_with_exit_codes_and_separate_stdout_stderr(env: Deployment) -> None:
    task_id = env.submit(
        {
            "executors": [
                {"image": "alpine", "command": ["sh", "-c", "echo out-1; echo err-1 >&2"]},
                {
                    "image": "alpine",
                    "command": [
                        "sh",
                        "-c",
                        "echo \"$GREETING\" '$(GREETING)' from $(pwd); printf x >&2",
                    ],
                    "workdir": "/work",
                    "env": {"GREETING": "hello $(USER)"},
                },
            ],
            "volumes": ["/work"],
        }
    )
    record = env.wait_state(task_id)
    assert record.state == State.COMPLETE, system_logs(env, task_id)
    logs = env.service.get(task_id, "FULL")["logs"][0]["logs"]
    assert [(entry["exit_code"], entry["stdout"], entry["stderr"]) for entry in logs] == [
        (0, "out-1\n", "err-1\n"),
        # Kubernetes expands $(VAR) in commands and env values: TESK escapes them.
        (0, "hello $(USER) $(GREETING) from /work\n", "x"),
    ]


def test_a_failing_executor_ends_the_task_and_skips_the_next(env: Deployment) -> None:
    task_id = env.submit(task(["sh", "-c", "echo partial; exit 3"], ["echo", "never"]))
    record = env.wait_state(task_id)
    assert record.state == State.EXECUTOR_ERROR
    assert record.log is not None
    assert [(e.exit_code, e.stdout) for e in record.log.logs] == [(3, "partial\n")]
    assert "executor 0 exited with code 3" in system_logs(env, task_id)


def test_ignore_error_goes_on_to_the_next_executor(env: Deployment) -> None:
    task_id = env.submit(
        {
            "executors": [
                {"image": "alpine", "command": ["false"], "ignore_error": True},
                {"image": "alpine", "command": ["echo", "after"]},
            ]
        }
    )
    record = env.wait_state(task_id)
    assert record.state == State.COMPLETE
    assert record.log is not None
    assert [(e.exit_code, e.stdout) for e in record.log.logs] == [(1, ""), (0, "after\n")]


def test_requested_stdout_and_stderr_files_are_written_and_tailed(env: Deployment) -> None:
    task_id = env.submit(
        {
            "executors": [
                {
                    "image": "alpine",
                    "command": ["sh", "-c", "echo to-file; echo err-file >&2"],
                    "stdout": "/logs/out.txt",
                    "stderr": "/logs/err.txt",
                },
                {"image": "alpine", "command": ["cat", "/logs/out.txt", "/logs/err.txt"]},
            ]
        }
    )
    record = env.wait_state(task_id)
    assert record.state == State.COMPLETE, system_logs(env, task_id)
    assert record.log is not None
    first, second = record.log.logs
    assert (first.stdout, first.stderr) == ("to-file\n", "err-file\n")
    assert second.stdout == "to-file\nerr-file\n"


def test_the_pvc_goes_when_the_task_ends_and_the_rest_after_the_ttl(
    cluster: FakeCluster, tmp_path: Path
) -> None:
    with deployment(cluster, ttl_seconds_after_finished=1) as env:
        task_id = env.submit(task(["true"]))
        assert env.wait_state(task_id).state == State.COMPLETE
        cluster.wait_for(lambda: not leftovers(cluster, task_id), timeout=20)
        assert env.record(task_id).state == State.COMPLETE


def test_cancel_removes_everything_and_ends_canceled(env: Deployment, cluster: FakeCluster) -> None:
    task_id = env.submit(task(["sh", "-c", "echo started; sleep 60"]))
    cluster.wait_for(lambda: cluster.get("pods", names.TaskNames(task_id).executor_pod(0)))
    env.wait_state(task_id, lambda s: s == State.RUNNING)
    env.service.cancel(task_id)
    assert env.record(task_id).state in (State.CANCELING, State.CANCELED)
    record = env.wait_state(task_id)
    assert record.state == State.CANCELED
    # CANCELED only once the Job is gone, and it goes last.
    assert leftovers(cluster, task_id) == []


def test_cancel_of_a_queued_task_before_its_taskmaster_runs(
    env: Deployment, cluster: FakeCluster
) -> None:
    cluster.script(labels_match(TASKMASTERS), Unschedulable(), times=1)
    task_id = env.submit(task(["true"]))
    env.service.cancel(task_id)
    assert env.wait_state(task_id).state == State.CANCELED
    assert leftovers(cluster, task_id) == []


@pytest.mark.parametrize(
    ("outcome", "reason"),
    [
        (Unschedulable("0/1 nodes are available: 1 Insufficient nvidia.com/gpu."), "Unschedulable"),
        (ImagePullFailure("failed to pull image: not found"), "ImagePull"),
    ],
    ids=["unschedulable", "image-pull"],
)
def test_an_executor_pending_past_the_timeout_is_a_system_error(
    cluster: FakeCluster, outcome: object, reason: str
) -> None:
    cluster.script(labels_match(EXECUTORS), outcome, times=1)  # type: ignore[arg-type]
    with deployment(cluster, pending_timeout_s=2) as env:
        task_id = env.submit(task(["true"]))
        record = env.wait_state(task_id)
        assert record.state == State.SYSTEM_ERROR
        logs = system_logs(env, task_id)
        assert "still pending after 2 s" in logs
        assert reason in logs
        assert cluster.get("pods", names.TaskNames(task_id).executor_pod(0)) is None


def test_a_taskmaster_that_never_starts_is_a_system_error(cluster: FakeCluster) -> None:
    cluster.script(labels_match(TASKMASTERS), Unschedulable(), times=1)
    with deployment(cluster, pending_timeout_s=2) as env:
        task_id = env.submit(task(["true"]))
        assert env.wait_state(task_id).state == State.SYSTEM_ERROR
        assert "the taskmaster did not start within 2 s" in system_logs(env, task_id)
        cluster.wait_for(lambda: not leftovers(cluster, task_id))


def test_an_oom_killed_executor_is_an_executor_error_with_the_reason(
    env: Deployment, cluster: FakeCluster
) -> None:
    cluster.script(labels_match(EXECUTORS), OOMKilled(after=0.1), times=1)
    task_id = env.submit(task(["sleep", "30"]) | {"resources": {"ram_gb": 0.1}})
    record = env.wait_state(task_id)
    assert record.state == State.EXECUTOR_ERROR
    assert record.log is not None
    assert record.log.logs[0].exit_code == 137
    assert "OOMKilled" in system_logs(env, task_id)


@pytest.mark.parametrize("outcome", [Evicted(after=0.1), NodeLost(after=0.1, gc_after=0.5)])
def test_an_evicted_or_lost_executor_is_preempted(
    env: Deployment, cluster: FakeCluster, outcome: object
) -> None:
    cluster.script(labels_match(EXECUTORS), outcome, times=1)  # type: ignore[arg-type]
    task_id = env.submit(task(["sleep", "30"]))
    record = env.wait_state(task_id)
    assert record.state == State.PREEMPTED, system_logs(env, task_id)
    assert "preempted" in system_logs(env, task_id)


def test_a_lost_taskmaster_is_a_system_error_and_its_pods_are_removed(
    env: Deployment, cluster: FakeCluster
) -> None:
    task_id = env.submit(task(["sleep", "60"]))
    executor = names.TaskNames(task_id).executor_pod(0)
    cluster.wait_for(lambda: cluster.get("pods", executor))
    env.wait_state(task_id, lambda s: s == State.RUNNING)
    (taskmaster,) = [
        p
        for p in cluster.objects("pods", cluster.namespace)
        if p["metadata"]["labels"].get(names.LABEL_COMPONENT) == names.COMPONENT_TASKMASTER
        and p["metadata"]["labels"].get(names.LABEL_TASK) == task_id
    ]
    core = env.backend.kube.core
    core.delete_namespaced_pod(
        taskmaster["metadata"]["name"], cluster.namespace, grace_period_seconds=0
    )
    record = env.wait_state(task_id)
    assert record.state == State.SYSTEM_ERROR
    assert "the taskmaster failed without a final report" in system_logs(env, task_id)
    cluster.wait_for(lambda: not leftovers(cluster, task_id))


def test_max_runtime_stops_the_executor(env: Deployment) -> None:
    task_id = env.submit(
        task(["sleep", "60"]) | {"resources": {"backend_parameters": {"max_runtime_seconds": "1"}}}
    )
    record = env.wait_state(task_id)
    assert record.state == State.EXECUTOR_ERROR
    assert "DeadlineExceeded" in system_logs(env, task_id)


def test_a_restarted_api_applies_what_happened_while_it_was_down(
    cluster: FakeCluster, tmp_path: Path
) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'tesk.db'}")
    with deployment(cluster, store=store, start=False) as env:
        task_id = env.submit(task(["echo", "while down"]))
        job = names.TaskNames(task_id).job
        cluster.wait_for(
            lambda: any(
                c["type"] == "Complete"
                for c in (cluster.get("jobs", job) or {}).get("status", {}).get("conditions", [])
            ),
            timeout=60,
        )
        assert env.record(task_id).state == State.QUEUED  # nothing applied it yet
        env.backend.start()
        record = env.wait_state(task_id)
        assert record.state == State.COMPLETE
        assert record.log is not None
        assert record.log.logs[0].stdout == "while down\n"
    store.close()


def test_the_volume_is_deleted_when_the_task_ends_before_the_ttl(
    env: Deployment, cluster: FakeCluster
) -> None:
    task_id = env.submit(task(["true"]))
    assert env.wait_state(task_id).state == State.COMPLETE
    tn = names.TaskNames(task_id)
    cluster.wait_for(lambda: cluster.get("persistentvolumeclaims", tn.volume) is None)
    assert cluster.get("jobs", tn.job) is not None  # kept until its TTL, with its pods' logs


def test_two_api_replicas_reconcile_the_same_tasks(env: Deployment, cluster: FakeCluster) -> None:
    other = KubernetesBackend(env.config, env.store)
    other.start()
    try:
        done = env.submit(task(["echo", "one"]))
        running = env.submit(task(["sleep", "60"]))
        env.wait_state(running, lambda s: s == State.RUNNING)
        # Cancelled through the other replica's backend.
        make_service(env.store, other, env.config).cancel(running)
        assert env.wait_state(done).state == State.COMPLETE
        assert env.wait_state(running).state == State.CANCELED
        record = env.record(done)
        assert record.log is not None
        assert record.log.logs[0].stdout == "one\n"
        assert leftovers(cluster, running) == []
    finally:
        other.stop()


def test_a_second_submit_completes_a_half_done_one(cluster: FakeCluster) -> None:
    # The API process died after creating the Job and before its task ConfigMap: submitting again
    # (what the reconciler does for a QUEUED task) keeps the Job and creates the ConfigMap.
    with deployment(cluster, start=False) as env:
        task_id = env.submit(task(["echo", "once"]))
        tn = names.TaskNames(task_id)
        env.backend.kube.core.delete_namespaced_config_map(tn.task_configmap, cluster.namespace)
        env.backend.submit(env.record(task_id))
        jobs = [j["metadata"]["name"] for j in cluster.objects("jobs", cluster.namespace)]
        assert jobs == [tn.job]
        env.backend.start()
        record = env.wait_state(task_id)
    assert record.state == State.COMPLETE, record.log
    assert record.log is not None
    assert record.log.logs[0].stdout == "once\n"
