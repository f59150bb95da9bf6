"""Scripted outcomes of the fake cluster: what a real cluster does to pods that cannot run."""

from __future__ import annotations

import time
from typing import Any

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from tests.k8s.fakecluster import (
    ClaimPending,
    Evicted,
    Exit,
    FakeCluster,
    ImagePullFailure,
    NodeLost,
    OOMKilled,
    SlowStart,
    Unschedulable,
    labels_match,
    name_matches,
)

NS = "tesk"


def pod(
    name: str, command: list[str], labels: dict[str, str] | None = None, **spec: Any
) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": "busybox:1.36", "command": command}
    container.update(spec.pop("container", {}))
    return {
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"restartPolicy": "Never", "containers": [container], **spec},
    }


def read(core: client.CoreV1Api, name: str) -> client.V1Pod:
    found: client.V1Pod = core.read_namespaced_pod(name, NS)
    return found


def conditions(found: client.V1Pod) -> dict[str, tuple[str, str | None]]:
    return {c.type: (c.status, c.reason) for c in found.status.conditions or []}


def wait_pod(cluster: FakeCluster, core: client.CoreV1Api, name: str, check: Any) -> client.V1Pod:
    def probe() -> client.V1Pod | None:
        found = read(core, name)
        return found if check(found) else None

    result: client.V1Pod = cluster.wait_for(probe)
    return result


def test_unschedulable_until_the_script_is_cancelled(
    fake_cluster: FakeCluster, core_v1: client.CoreV1Api
) -> None:
    script = fake_cluster.script(labels_match("role=executor"), Unschedulable())
    core_v1.create_namespaced_pod(NS, pod("exec-0", ["true"], {"role": "executor"}))
    pending = wait_pod(fake_cluster, core_v1, "exec-0", lambda p: "PodScheduled" in conditions(p))
    assert pending.status.phase == "Pending"
    assert conditions(pending)["PodScheduled"] == ("False", "Unschedulable")
    scheduled = next(c for c in pending.status.conditions if c.type == "PodScheduled")
    assert scheduled.message.startswith("0/1 nodes are available")
    assert pending.spec.node_name is None
    assert script.matched == ["exec-0"]
    assert any(e.reason == "FailedScheduling" for e in core_v1.list_namespaced_event(NS).items)
    script.cancel()  # the cause is gone: the scheduler tries the pending pods again
    done = wait_pod(fake_cluster, core_v1, "exec-0", lambda p: p.status.phase == "Succeeded")
    assert done.spec.node_name == "fakecluster-node"


def test_requests_beyond_the_node_stay_unschedulable(
    fake_cluster: FakeCluster, core_v1: client.CoreV1Api
) -> None:
    core_v1.create_namespaced_pod(
        NS,
        pod(
            "huge", ["true"], container={"resources": {"requests": {"cpu": "64", "memory": "1Gi"}}}
        ),
    )
    pending = wait_pod(fake_cluster, core_v1, "huge", lambda p: "PodScheduled" in conditions(p))
    message = next(c.message for c in pending.status.conditions if c.type == "PodScheduled")
    assert "1 Insufficient cpu" in message
    assert conditions(pending)["PodScheduled"] == ("False", "Unschedulable")


def test_image_pull_failure_waits_and_has_no_log(
    fake_cluster: FakeCluster, core_v1: client.CoreV1Api
) -> None:
    fake_cluster.script(name_matches("pull-*"), ImagePullFailure(back_off_after=0.05))
    core_v1.create_namespaced_pod(NS, pod("pull-1", ["true"]))

    def waiting_reason(p: client.V1Pod) -> str | None:
        statuses = p.status.container_statuses or []
        return statuses[0].state.waiting.reason if statuses and statuses[0].state.waiting else None

    wait_pod(fake_cluster, core_v1, "pull-1", lambda p: waiting_reason(p) == "ErrImagePull")
    backing_off = wait_pod(
        fake_cluster, core_v1, "pull-1", lambda p: waiting_reason(p) == "ImagePullBackOff"
    )
    assert backing_off.status.phase == "Pending"
    assert backing_off.status.container_statuses[0].state.waiting.message.startswith(
        'Back-off pulling image "busybox:1.36"'
    )
    with pytest.raises(ApiException) as error:
        core_v1.read_namespaced_pod_log("pull-1", NS)
    assert error.value.status == 400
    assert "is waiting to start: trying and failing to pull image" in error.value.body
    core_v1.delete_namespaced_pod("pull-1", NS)
    fake_cluster.wait_for(lambda: fake_cluster.get("pods", "pull-1") is None)


def test_oom_killed_container(fake_cluster: FakeCluster, core_v1: client.CoreV1Api) -> None:
    fake_cluster.script(name_matches("hungry"), OOMKilled(after=0.1))
    core_v1.create_namespaced_pod(NS, pod("hungry", ["sleep", "30"]))
    done = wait_pod(fake_cluster, core_v1, "hungry", lambda p: p.status.phase == "Failed")
    terminated = done.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (137, "OOMKilled")
    assert done.status.reason is None  # an OOM kill ends the container, not the pod


def test_evicted_pod(fake_cluster: FakeCluster, core_v1: client.CoreV1Api) -> None:
    fake_cluster.script(name_matches("victim"), Evicted(after=0.1))
    core_v1.create_namespaced_pod(NS, pod("victim", ["sleep", "30"]))
    done = wait_pod(fake_cluster, core_v1, "victim", lambda p: p.status.phase == "Failed")
    assert done.status.reason == "Evicted"
    assert "low on resource: memory" in done.status.message
    assert conditions(done)["DisruptionTarget"] == ("True", "TerminationByKubelet")
    assert done.status.container_statuses[0].state.terminated.exit_code == 137


def test_lost_node(fake_cluster: FakeCluster, core_v1: client.CoreV1Api) -> None:
    fake_cluster.script(name_matches("stranded"), NodeLost(after=0.1, gc_after=0.5))
    core_v1.create_namespaced_pod(NS, pod("stranded", ["sleep", "30"]))
    stuck = wait_pod(
        fake_cluster, core_v1, "stranded", lambda p: p.metadata.deletion_timestamp is not None
    )
    assert stuck.status.phase == "Running"  # the kubelet can no longer report
    assert conditions(stuck)["Ready"][0] == "False"
    assert conditions(stuck)["DisruptionTarget"] == ("True", "DeletionByTaintManager")
    fake_cluster.wait_for(lambda: fake_cluster.get("pods", "stranded") is None)


def test_lost_node_is_seen_as_failed_by_a_watch(
    fake_cluster: FakeCluster, core_v1: client.CoreV1Api
) -> None:
    fake_cluster.script(name_matches("stranded"), NodeLost(after=0.05, gc_after=0.2))
    rv = core_v1.list_namespaced_pod(NS).metadata.resource_version
    core_v1.create_namespaced_pod(NS, pod("stranded", ["sleep", "30"]))
    fake_cluster.wait_for(lambda: fake_cluster.get("pods", "stranded") is None)
    phases = []
    for event in watch.Watch().stream(
        core_v1.list_namespaced_pod, NS, resource_version=rv, timeout_seconds=1
    ):
        phases.append((event["type"], event["object"].status.phase))
        if event["type"] == "DELETED":
            break
    assert phases[-1] == ("DELETED", "Failed")
    reasons = {c.reason for c in event["object"].status.conditions if c.type == "DisruptionTarget"}
    assert reasons == {"DeletionByPodGC"}


def test_scripted_exit_runs_nothing(fake_cluster: FakeCluster, core_v1: client.CoreV1Api) -> None:
    script = fake_cluster.script(name_matches("fake-*"), Exit(code=7, log="pretend\n"), times=1)
    core_v1.create_namespaced_pod(NS, pod("fake-1", ["sh", "-c", "echo real; exit 0"]))
    core_v1.create_namespaced_pod(NS, pod("fake-2", ["sh", "-c", "echo real; exit 0"]))
    first = wait_pod(fake_cluster, core_v1, "fake-1", lambda p: p.status.phase == "Failed")
    assert first.status.container_statuses[0].state.terminated.exit_code == 7
    assert core_v1.read_namespaced_pod_log("fake-1", NS) == "pretend\n"
    wait_pod(fake_cluster, core_v1, "fake-2", lambda p: p.status.phase == "Succeeded")
    assert core_v1.read_namespaced_pod_log("fake-2", NS) == "real\n"
    assert script.matched == ["fake-1"]


def test_slow_start_is_container_creating(
    fake_cluster: FakeCluster, core_v1: client.CoreV1Api
) -> None:
    fake_cluster.script(name_matches("slow"), SlowStart(seconds=600))
    fake_cluster.script(name_matches("brief"), SlowStart(seconds=0.1))
    core_v1.create_namespaced_pod(NS, pod("slow", ["true"]))
    core_v1.create_namespaced_pod(NS, pod("brief", ["true"]))
    creating = wait_pod(fake_cluster, core_v1, "slow", lambda p: bool(p.status.container_statuses))
    assert creating.status.container_statuses[0].state.waiting.reason == "ContainerCreating"
    assert creating.status.phase == "Pending"
    with pytest.raises(ApiException) as error:
        core_v1.read_namespaced_pod_log("slow", NS)
    assert "is waiting to start: ContainerCreating" in error.value.body
    core_v1.delete_namespaced_pod("slow", NS)  # deletion does not wait for the start
    fake_cluster.wait_for(lambda: fake_cluster.get("pods", "slow") is None)
    wait_pod(fake_cluster, core_v1, "brief", lambda p: p.status.phase == "Succeeded")


def test_claim_that_never_binds_keeps_its_pods_pending(
    fake_cluster: FakeCluster, core_v1: client.CoreV1Api
) -> None:
    fake_cluster.script(name_matches("stuck-*"), ClaimPending())
    core_v1.create_namespaced_persistent_volume_claim(
        NS,
        {
            "metadata": {"name": "stuck-pvc"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )
    core_v1.create_namespaced_pod(
        NS,
        pod(
            "user",
            ["true"],
            volumes=[{"name": "v", "persistentVolumeClaim": {"claimName": "stuck-pvc"}}],
        ),
    )
    pending = wait_pod(fake_cluster, core_v1, "user", lambda p: "PodScheduled" in conditions(p))
    message = next(c.message for c in pending.status.conditions if c.type == "PodScheduled")
    assert "pod has unbound immediate PersistentVolumeClaims" in message
    time.sleep(0.1)
    assert core_v1.read_namespaced_persistent_volume_claim("stuck-pvc", NS).status.phase == (
        "Pending"
    )


def test_wait_for_first_consumer_binds_when_a_pod_is_scheduled() -> None:
    with FakeCluster(storage_classes={"standard": "WaitForFirstConsumer"}) as cluster:
        api = config.new_client_from_config(config_file=cluster.kubeconfig_path)
        core = client.CoreV1Api(api)
        core.create_namespaced_persistent_volume_claim(
            NS,
            {
                "metadata": {"name": "late"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            },
        )
        time.sleep(0.1)
        assert core.read_namespaced_persistent_volume_claim("late", NS).status.phase == "Pending"
        core.create_namespaced_pod(
            NS,
            pod(
                "consumer",
                ["sh", "-c", "echo x > /v/f"],
                volumes=[{"name": "v", "persistentVolumeClaim": {"claimName": "late"}}],
                container={"volumeMounts": [{"name": "v", "mountPath": "/v"}]},
            ),
        )
        cluster.wait_for(lambda: cluster.get("pods", "consumer")["status"]["phase"] == "Succeeded")
        claim = core.read_namespaced_persistent_volume_claim("late", NS)
        assert claim.status.phase == "Bound"
        assert claim.metadata.annotations["volume.kubernetes.io/selected-node"] == (
            "fakecluster-node"
        )
        api.close()
        assert cluster.errors == []
