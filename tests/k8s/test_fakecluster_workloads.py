"""Workloads on the fake cluster: Jobs, pods run in bubblewrap, logs, volumes, credentials,
cascading deletion, TTL."""

from __future__ import annotations

import os
import textwrap
import threading
import time
from typing import Any

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from tests.k8s.fakecluster import FakeCluster
from tests.k8s.fakecluster.store import Event

NS = "tesk"


def job(name: str, command: list[str], **spec: Any) -> dict[str, Any]:
    pod_spec = {
        "restartPolicy": "Never",
        "containers": [{"name": "main", "image": "busybox:1.36", "command": command}],
    }
    pod_spec.update(spec.pop("pod", {}))
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "tesk"}},
        "spec": {"backoffLimit": 0, "template": {"spec": pod_spec}, **spec},
    }


def pod(name: str, command: list[str], **spec: Any) -> dict[str, Any]:
    container = {"name": "main", "image": "busybox:1.36", "command": command}
    container.update(spec.pop("container", {}))
    return {
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "containers": [container], **spec},
    }


def finished_job(cluster: FakeCluster, name: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        obj = cluster.get("jobs", name)
        conditions = (obj or {}).get("status", {}).get("conditions", [])
        if any(c["type"] in ("Complete", "Failed") for c in conditions):
            return obj
        return None

    result: dict[str, Any] = cluster.wait_for(done)
    return result


def finished_pod(core: client.CoreV1Api, name: str) -> client.V1Pod:
    end = time.monotonic() + 20
    while time.monotonic() < end:
        found = core.read_namespaced_pod(name, NS)
        if found.status.phase in ("Succeeded", "Failed"):
            return found
        time.sleep(0.02)
    raise TimeoutError(f"pod {name} did not finish")


def job_pods(core: client.CoreV1Api, name: str) -> list[client.V1Pod]:
    pods: list[client.V1Pod] = core.list_namespaced_pod(NS, label_selector=f"job-name={name}").items
    return pods


def test_failing_job_reports_exit_code_and_log(
    fake_cluster: FakeCluster, core_v1: client.CoreV1Api, batch_v1: client.BatchV1Api
) -> None:
    created = batch_v1.create_namespaced_job(NS, job("fails", ["sh", "-c", "echo hi; exit 3"]))
    done = finished_job(fake_cluster, "fails")
    conditions = {c["type"]: c for c in done["status"]["conditions"]}
    assert conditions["Failed"]["reason"] == "BackoffLimitExceeded"
    assert conditions["FailureTarget"]["status"] == "True"
    assert done["status"]["failed"] == 1
    assert "completionTime" not in done["status"]

    [failed] = job_pods(core_v1, "fails")
    assert failed.status.phase == "Failed"
    terminated = failed.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (3, "Error")
    assert failed.metadata.labels["batch.kubernetes.io/job-name"] == "fails"
    assert failed.metadata.labels["controller-uid"] == created.metadata.uid
    [owner] = failed.metadata.owner_references
    assert (owner.kind, owner.name, owner.uid, owner.controller, owner.block_owner_deletion) == (
        "Job",
        "fails",
        created.metadata.uid,
        True,
        True,
    )
    assert core_v1.read_namespaced_pod_log(failed.metadata.name, NS) == "hi\n"
    # backoffLimit 0: the command ran once.
    assert len(job_pods(core_v1, "fails")) == 1


def test_succeeding_job_completes(
    fake_cluster: FakeCluster, core_v1: client.CoreV1Api, batch_v1: client.BatchV1Api
) -> None:
    batch_v1.create_namespaced_job(NS, job("works", ["sh", "-c", "echo a; echo b >&2; echo c"]))
    done = finished_job(fake_cluster, "works")
    conditions = {c["type"]: c["reason"] for c in done["status"]["conditions"]}
    assert conditions == {
        "SuccessCriteriaMet": "CompletionsReached",
        "Complete": "CompletionsReached",
    }
    assert done["status"]["succeeded"] == 1
    assert done["status"]["completionTime"]
    [ran] = job_pods(core_v1, "works")
    assert ran.status.phase == "Succeeded"
    assert ran.status.container_statuses[0].state.terminated.reason == "Completed"
    ready = {c.type: (c.status, c.reason) for c in ran.status.conditions}
    assert ready["Ready"] == ("False", "PodCompleted")
    assert ready["PodScheduled"] == ("True", None)
    name = ran.metadata.name
    # stdout and stderr interleaved as written, like a container runtime's log.
    assert core_v1.read_namespaced_pod_log(name, NS) == "a\nb\nc\n"
    assert core_v1.read_namespaced_pod_log(name, NS, tail_lines=1) == "c\n"
    stamped = core_v1.read_namespaced_pod_log(name, NS, timestamps=True).splitlines()
    assert [line.split(" ", 1)[1] for line in stamped] == ["a", "b", "c"]
    assert core_v1.read_namespaced_pod_log(name, NS, container="main", limit_bytes=3) == "a\nb"


def test_job_retries_up_to_its_backoff_limit(
    fake_cluster: FakeCluster, core_v1: client.CoreV1Api, batch_v1: client.BatchV1Api
) -> None:
    batch_v1.create_namespaced_job(NS, job("retries", ["false"], backoffLimit=2))
    done = finished_job(fake_cluster, "retries")
    assert done["status"]["failed"] == 3
    assert len(job_pods(core_v1, "retries")) == 3


def test_pvc_sub_paths_are_shared_by_pods_in_sequence(
    fake_cluster: FakeCluster, core_v1: client.CoreV1Api
) -> None:
    claim = core_v1.create_namespaced_persistent_volume_claim(
        NS,
        {
            "metadata": {"name": "task-pvc"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )
    assert claim.spec.storage_class_name == "standard"
    bound = fake_cluster.wait_for(
        lambda: (
            core_v1.read_namespaced_persistent_volume_claim("task-pvc", NS).status.phase == "Bound"
        )
    )
    assert bound
    volume = [{"name": "work", "persistentVolumeClaim": {"claimName": "task-pvc"}}]
    core_v1.create_namespaced_pod(
        NS,
        pod(
            "writer",
            ["sh", "-c", "echo data > /data/in/file.txt && mkdir /outputs/o && ls /data"],
            volumes=volume,
            container={
                "volumeMounts": [
                    {"name": "work", "mountPath": "/data/in", "subPath": "inputs"},
                    {"name": "work", "mountPath": "/outputs", "subPath": "outputs"},
                ]
            },
        ),
    )
    assert finished_pod(core_v1, "writer").status.phase == "Succeeded"
    core_v1.create_namespaced_pod(
        NS,
        pod(
            "reader",
            ["sh", "-c", "cat /in/file.txt; ls /all; touch /in/x || echo read-only"],
            volumes=volume,
            container={
                "volumeMounts": [
                    {"name": "work", "mountPath": "/in", "subPath": "inputs", "readOnly": True},
                    {"name": "work", "mountPath": "/all"},
                ]
            },
        ),
    )
    reader = finished_pod(core_v1, "reader")
    log = core_v1.read_namespaced_pod_log("reader", NS)
    assert reader.status.phase == "Succeeded"
    assert log.splitlines()[:3] == ["data", "inputs", "outputs"]
    assert log.rstrip().endswith("read-only")


def test_pod_uses_the_injected_kubeconfig_with_the_real_client(
    fake_cluster: FakeCluster, core_v1: client.CoreV1Api
) -> None:
    script = textwrap.dedent("""
        import os
        from kubernetes import client, config
        try:
            config.load_incluster_config()
            print("in-cluster")
        except config.ConfigException:
            config.load_kube_config()
            print("kubeconfig", os.environ["KUBECONFIG"])
        core = client.CoreV1Api()
        namespace = open("/var/run/secrets/kubernetes.io/serviceaccount/namespace").read()
        core.create_namespaced_config_map(namespace, {
            "metadata": {"name": "from-pod"}, "data": {"pod": os.environ["POD_NAME"]}})
        print("created")
    """)
    core_v1.create_namespaced_pod(
        NS,
        pod(
            "talker",
            ["python", "-c", script],
            container={
                "env": [
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
                ]
            },
        ),
    )
    talker = finished_pod(core_v1, "talker")
    log = core_v1.read_namespaced_pod_log("talker", NS)
    assert talker.status.phase == "Succeeded", log
    assert log.splitlines() == ["kubeconfig /var/run/secrets/fakecluster/kubeconfig", "created"]
    assert core_v1.read_namespaced_config_map("from-pod", NS).data == {"pod": "talker"}
    creates = [
        r
        for r in fake_cluster.requests
        if r.verb == "create" and r.name == "" and r.resource == "configmaps"
    ]
    assert [r.user for r in creates] == ["system:serviceaccount:tesk:default"]


def test_in_cluster_mode_serves_tls_to_in_cluster_configuration() -> None:
    script = textwrap.dedent("""
        from kubernetes import client, config
        config.load_incluster_config()
        print(client.Configuration.get_default_copy().host.split(":")[0])
        client.CoreV1Api().create_namespaced_config_map("tesk", {"metadata": {"name": "tls"}})
        print("created")
    """)
    with FakeCluster(in_cluster=True) as cluster:
        api = config.new_client_from_config(config_file=cluster.kubeconfig_path)
        core = client.CoreV1Api(api)
        core.create_namespaced_pod(NS, pod("inside", ["python", "-c", script]))
        inside = finished_pod(core, "inside")
        log = core.read_namespaced_pod_log("inside", NS)
        assert inside.status.phase == "Succeeded", log
        assert log.splitlines() == ["https", "created"]
        [created] = [
            r for r in cluster.requests if r.verb == "create" and r.resource == "configmaps"
        ]
        assert created.user == "system:serviceaccount:tesk:default"
        api.close()
        assert cluster.errors == []


def test_pods_without_a_token_get_no_credentials(core_v1: client.CoreV1Api) -> None:
    core_v1.create_namespaced_pod(
        NS,
        pod(
            "executor",
            ["sh", "-c", "echo ${KUBECONFIG:-none}; ls /var/run/secrets 2>&1 | wc -l"],
            automountServiceAccountToken=False,
        ),
    )
    finished_pod(core_v1, "executor")
    assert core_v1.read_namespaced_pod_log("executor", NS) == "none\n1\n"


def test_env_expansion_workdir_and_configmap_volume(core_v1: client.CoreV1Api) -> None:
    core_v1.create_namespaced_config_map(
        NS, {"metadata": {"name": "task"}, "data": {"task.json": '{"id": 1}', "x": "y"}}
    )
    core_v1.create_namespaced_pod(
        NS,
        pod(
            "env",
            [
                "sh",
                "-c",
                "echo $(GREETING) '$$(GREETING)' '$(UNSET)'; pwd; cat /task/t.json; echo; "
                "ls /task; echo $NS $FROM_CM",
            ],
            volumes=[
                {
                    "name": "cfg",
                    "configMap": {
                        "name": "task",
                        "items": [{"key": "task.json", "path": "t.json"}],
                    },
                }
            ],
            container={
                "workingDir": "/work/dir",
                "volumeMounts": [{"name": "cfg", "mountPath": "/task"}],
                "env": [
                    {"name": "GREETING", "value": "hello"},
                    {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                    {
                        "name": "FROM_CM",
                        "valueFrom": {"configMapKeyRef": {"name": "task", "key": "x"}},
                    },
                ],
            },
        ),
    )
    ran = finished_pod(core_v1, "env")
    log = core_v1.read_namespaced_pod_log("env", NS)
    assert ran.status.phase == "Succeeded", log
    assert log.splitlines() == [
        "hello $(GREETING) $(UNSET)",
        "/work/dir",
        '{"id": 1}',
        "t.json",
        "tesk y",
    ]


def test_missing_command_is_a_start_error(core_v1: client.CoreV1Api) -> None:
    core_v1.create_namespaced_pod(NS, pod("nothing", ["no-such-command-anywhere"]))
    failed = finished_pod(core_v1, "nothing")
    terminated = failed.status.container_statuses[0].state.terminated
    assert failed.status.phase == "Failed"
    assert (terminated.exit_code, terminated.reason) == (128, "StartError")
    assert "executable file not found in $PATH" in terminated.message


def test_restart_on_failure_keeps_the_previous_log(core_v1: client.CoreV1Api) -> None:
    core_v1.create_namespaced_pod(
        NS,
        pod(
            "flaky",
            [
                "sh",
                "-c",
                "if [ -f /scratch/seen ]; then echo second; exit 0; fi; "
                "touch /scratch/seen; echo first; exit 1",
            ],
            restartPolicy="OnFailure",
            volumes=[{"name": "scratch", "emptyDir": {}}],
            container={"volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]},
        ),
    )
    done = finished_pod(core_v1, "flaky")
    status = done.status.container_statuses[0]
    assert done.status.phase == "Succeeded"
    assert status.restart_count == 1
    assert status.last_state.terminated.exit_code == 1
    assert core_v1.read_namespaced_pod_log("flaky", NS) == "second\n"
    assert core_v1.read_namespaced_pod_log("flaky", NS, previous=True) == "first\n"


def test_follow_streams_the_log_until_the_container_ends(core_v1: client.CoreV1Api) -> None:
    core_v1.create_namespaced_pod(
        NS, pod("ticker", ["sh", "-c", "for i in 1 2 3; do echo tick $i; sleep 0.1; done"])
    )
    end = time.monotonic() + 10
    while core_v1.read_namespaced_pod("ticker", NS).status.phase == "Pending":
        assert time.monotonic() < end
        time.sleep(0.02)
    lines = list(watch.Watch().stream(core_v1.read_namespaced_pod_log, "ticker", NS))
    assert lines == ["tick 1", "tick 2", "tick 3"]


def _running(core: client.CoreV1Api, name: str) -> client.V1Pod:
    end = time.monotonic() + 10
    while time.monotonic() < end:
        found = core.read_namespaced_pod(name, NS)
        if found.status.phase == "Running":
            return found
        time.sleep(0.02)
    raise TimeoutError(f"pod {name} is not running")


def _processes_with(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    if marker.encode() in handle.read():
                        found.append(int(entry))
            except OSError:
                continue
    return found


def test_deleting_a_running_pod_terminates_its_processes(
    fake_cluster: FakeCluster, core_v1: client.CoreV1Api
) -> None:
    marker = "sleep 313.25"
    core_v1.create_namespaced_pod(
        NS, pod("sleeper", ["sh", "-c", f"trap 'echo bye; exit 0' TERM; {marker} & wait"])
    )
    _running(core_v1, "sleeper")
    fake_cluster.wait_for(lambda: _processes_with(marker))
    deleted = core_v1.delete_namespaced_pod("sleeper", NS)
    assert deleted.metadata.deletion_timestamp is not None  # graceful: it still exists
    fake_cluster.wait_for(lambda: fake_cluster.get("pods", "sleeper") is None)
    assert _processes_with(marker) == []


def test_pod_active_deadline(core_v1: client.CoreV1Api) -> None:
    core_v1.create_namespaced_pod(
        NS, pod("slow", ["sleep", "30"], activeDeadlineSeconds=1, terminationGracePeriodSeconds=0)
    )
    failed = finished_pod(core_v1, "slow")
    assert (failed.status.phase, failed.status.reason) == ("Failed", "DeadlineExceeded")
    assert failed.status.container_statuses[0].state.terminated.exit_code == 137


def test_job_active_deadline(
    fake_cluster: FakeCluster, core_v1: client.CoreV1Api, batch_v1: client.BatchV1Api
) -> None:
    batch_v1.create_namespaced_job(
        NS,
        job(
            "late",
            ["sleep", "30"],
            activeDeadlineSeconds=1,
            pod={"terminationGracePeriodSeconds": 0},
        ),
    )
    done = finished_job(fake_cluster, "late")
    failed = next(c for c in done["status"]["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "DeadlineExceeded"
    fake_cluster.wait_for(lambda: not job_pods(core_v1, "late"))


def _owned_by(job_obj: client.V1Job) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "name": job_obj.metadata.name,
            "uid": job_obj.metadata.uid,
            "blockOwnerDeletion": True,
        }
    ]


def test_foreground_deletion_removes_dependents_before_the_owner(
    fake_cluster: FakeCluster, core_v1: client.CoreV1Api, batch_v1: client.BatchV1Api
) -> None:
    deleted: list[tuple[str, str]] = []
    lock = threading.Lock()

    def record(event: Event) -> None:
        if event.type == "DELETED" and event.resource.plural != "events":
            with lock:
                deleted.append((event.resource.plural, event.obj["metadata"]["name"]))

    fake_cluster.store.subscribe(record)
    taskmaster = batch_v1.create_namespaced_job(
        NS, job("taskmaster", ["sh", "-c", "trap 'exit 143' TERM; sleep 300 & wait"])
    )
    owned = _owned_by(taskmaster)
    core_v1.create_namespaced_config_map(
        NS, {"metadata": {"name": "task-json", "ownerReferences": owned}}
    )
    core_v1.create_namespaced_persistent_volume_claim(
        NS,
        {
            "metadata": {"name": "task-pvc", "ownerReferences": owned},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )
    executor = ["sh", "-c", "trap 'exit 143' TERM; sleep 300 & wait"]
    core_v1.create_namespaced_pod(
        NS,
        {**pod("executor", executor), "metadata": {"name": "executor", "ownerReferences": owned}},
    )
    fake_cluster.wait_for(lambda: job_pods(core_v1, "taskmaster"))
    _running(core_v1, "executor")

    batch_v1.delete_namespaced_job("taskmaster", NS, propagation_policy="Foreground")
    waiting = batch_v1.read_namespaced_job("taskmaster", NS)
    assert waiting.metadata.deletion_timestamp is not None
    assert "foregroundDeletion" in waiting.metadata.finalizers

    fake_cluster.wait_for(lambda: fake_cluster.get("jobs", "taskmaster") is None)
    assert core_v1.list_namespaced_pod(NS).items == []
    assert core_v1.list_namespaced_persistent_volume_claim(NS).items == []
    assert [c.metadata.name for c in core_v1.list_namespaced_config_map(NS).items] == [
        "kube-root-ca.crt"
    ]
    with lock:
        order = list(deleted)
    assert order[-1] == ("jobs", "taskmaster")
    assert {
        ("configmaps", "task-json"),
        ("persistentvolumeclaims", "task-pvc"),
        ("pods", "executor"),
    } <= set(order)


def test_deleting_a_job_without_a_policy_orphans_its_pods(
    fake_cluster: FakeCluster, core_v1: client.CoreV1Api, batch_v1: client.BatchV1Api
) -> None:
    batch_v1.create_namespaced_job(NS, job("legacy", ["true"]))
    finished_job(fake_cluster, "legacy")
    batch_v1.delete_namespaced_job("legacy", NS)  # batch/v1 default: orphan
    fake_cluster.wait_for(lambda: fake_cluster.get("jobs", "legacy") is None)
    [orphan] = job_pods(core_v1, "legacy")
    assert orphan.metadata.owner_references is None


def test_background_deletion_collects_dependents(
    fake_cluster: FakeCluster, core_v1: client.CoreV1Api
) -> None:
    owner = core_v1.create_namespaced_config_map(NS, {"metadata": {"name": "owner"}})
    core_v1.create_namespaced_config_map(
        NS,
        {
            "metadata": {
                "name": "dependent",
                "ownerReferences": [
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "name": "owner",
                        "uid": owner.metadata.uid,
                    }
                ],
            }
        },
    )
    core_v1.delete_namespaced_config_map("owner", NS, propagation_policy="Background")
    fake_cluster.wait_for(lambda: fake_cluster.get("configmaps", "dependent") is None)


def test_finished_jobs_are_deleted_after_their_ttl(
    fake_cluster: FakeCluster, core_v1: client.CoreV1Api, batch_v1: client.BatchV1Api
) -> None:
    batch_v1.create_namespaced_job(NS, job("short-lived", ["true"], ttlSecondsAfterFinished=0))
    fake_cluster.wait_for(lambda: fake_cluster.get("jobs", "short-lived") is None)
    fake_cluster.wait_for(lambda: not job_pods(core_v1, "short-lived"))
    reasons = [e.reason for e in core_v1.list_namespaced_event(NS).items]
    assert "SuccessfulCreate" in reasons
    assert "Completed" in reasons


def test_pods_need_their_service_account(
    fake_cluster: FakeCluster, core_v1: client.CoreV1Api, batch_v1: client.BatchV1Api
) -> None:
    with pytest.raises(ApiException) as error:
        core_v1.create_namespaced_pod(NS, pod("p", ["true"], serviceAccountName="taskmaster"))
    assert error.value.status == 403
    batch_v1.create_namespaced_job(
        NS, job("no-sa", ["true"], pod={"serviceAccountName": "taskmaster"})
    )
    fake_cluster.wait_for(
        lambda: any(e.reason == "FailedCreate" for e in core_v1.list_namespaced_event(NS).items)
    )
    core_v1.create_namespaced_service_account(NS, {"metadata": {"name": "taskmaster"}})
    assert finished_job(fake_cluster, "no-sa")["status"]["succeeded"] == 1


def test_init_containers_then_side_by_side_containers(
    fake_cluster: FakeCluster, core_v1: client.CoreV1Api
) -> None:
    shared = {"name": "shared", "mountPath": "/shared"}
    core_v1.create_namespaced_pod(
        NS,
        {
            "metadata": {"name": "multi"},
            "spec": {
                "restartPolicy": "Never",
                "volumes": [{"name": "shared", "emptyDir": {}}],
                "initContainers": [
                    {
                        "name": "prepare",
                        "image": "busybox",
                        "volumeMounts": [shared],
                        "command": ["sh", "-c", "echo ready > /shared/flag"],
                    }
                ],
                "containers": [
                    {
                        "name": "first",
                        "image": "busybox",
                        "volumeMounts": [shared],
                        "command": ["sh", "-c", "cat /shared/flag"],
                    },
                    {
                        "name": "second",
                        "image": "busybox",
                        "volumeMounts": [shared],
                        "terminationMessagePolicy": "FallbackToLogsOnError",
                        "command": ["sh", "-c", "echo last words; exit 2"],
                    },
                    {
                        "name": "third",
                        "image": "busybox",
                        "command": ["sh", "-c", "echo custom > /dev/termination-log"],
                    },
                ],
            },
        },
    )
    done = finished_pod(core_v1, "multi")
    assert done.status.phase == "Failed"
    assert done.status.init_container_statuses[0].state.terminated.reason == "Completed"
    states = {s.name: s.state.terminated for s in done.status.container_statuses}
    assert {name: state.exit_code for name, state in states.items()} == {
        "first": 0,
        "second": 2,
        "third": 0,
    }
    assert states["second"].message == "last words\n"
    assert states["third"].message == "custom\n"
    assert core_v1.read_namespaced_pod_log("multi", NS, container="first") == "ready\n"
    assert core_v1.read_namespaced_pod_log("multi", NS, container="prepare") == ""
    with pytest.raises(ApiException) as error:
        core_v1.read_namespaced_pod_log("multi", NS)
    assert error.value.status == 400
    assert (
        "a container name must be specified for pod multi, choose one of: "
        "[first second third] or one of the init containers: [prepare]" in error.value.body
    )


def test_secret_env_from_and_projected_volumes(core_v1: client.CoreV1Api) -> None:
    core_v1.create_namespaced_secret(
        NS, {"metadata": {"name": "creds"}, "stringData": {"AWS_ACCESS_KEY_ID": "key"}}
    )
    core_v1.create_namespaced_config_map(
        NS, {"metadata": {"name": "settings"}, "data": {"MODE": "fast"}}
    )
    core_v1.create_namespaced_pod(
        NS,
        pod(
            "mixed",
            [
                "sh",
                "-c",
                "echo $AWS_ACCESS_KEY_ID $CFG_MODE; cat /secret/AWS_ACCESS_KEY_ID; echo; "
                "cat /info/name; echo; cat /info/labels; echo; cat /proj/MODE",
            ],
            volumes=[
                {"name": "secret", "secret": {"secretName": "creds"}},
                {
                    "name": "info",
                    "downwardAPI": {
                        "items": [
                            {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
                            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                        ]
                    },
                },
                {"name": "proj", "projected": {"sources": [{"configMap": {"name": "settings"}}]}},
            ],
            container={
                "envFrom": [
                    {"secretRef": {"name": "creds"}},
                    {"configMapRef": {"name": "settings"}, "prefix": "CFG_"},
                ],
                "volumeMounts": [
                    {"name": "secret", "mountPath": "/secret"},
                    {"name": "info", "mountPath": "/info"},
                    {"name": "proj", "mountPath": "/proj"},
                ],
            },
        )
        | {"metadata": {"name": "mixed", "labels": {"app": "tesk"}}},
    )
    ran = finished_pod(core_v1, "mixed")
    log = core_v1.read_namespaced_pod_log("mixed", NS)
    assert ran.status.phase == "Succeeded", log
    assert log.splitlines() == ["key fast", "key", "mixed", 'app="tesk"', "fast"]


def test_missing_configmap_volume_waits_until_it_exists(
    fake_cluster: FakeCluster, core_v1: client.CoreV1Api
) -> None:
    core_v1.create_namespaced_pod(
        NS,
        pod(
            "patient",
            ["cat", "/cfg/k"],
            volumes=[{"name": "cfg", "configMap": {"name": "later"}}],
            container={"volumeMounts": [{"name": "cfg", "mountPath": "/cfg"}]},
        ),
    )
    fake_cluster.wait_for(
        lambda: any(e.reason == "FailedMount" for e in core_v1.list_namespaced_event(NS).items)
    )
    assert read_phase(core_v1, "patient") == "Pending"
    core_v1.create_namespaced_config_map(NS, {"metadata": {"name": "later"}, "data": {"k": "v"}})
    finished_pod(core_v1, "patient")
    assert core_v1.read_namespaced_pod_log("patient", NS) == "v"


def read_phase(core: client.CoreV1Api, name: str) -> str:
    phase: str = core.read_namespaced_pod(name, NS).status.phase
    return phase


def test_namespace_deletion_and_delete_collection(
    fake_cluster: FakeCluster, core_v1: client.CoreV1Api
) -> None:
    core_v1.create_namespace({"metadata": {"name": "scratch"}})
    fake_cluster.wait_for(lambda: fake_cluster.get("serviceaccounts", "default", "scratch"))
    for name, labels in (("a", {"x": "1"}), ("b", {"x": "1"}), ("c", {})):
        core_v1.create_namespaced_config_map(
            "scratch", {"metadata": {"name": name, "labels": labels}}
        )
    core_v1.delete_collection_namespaced_config_map("scratch", label_selector="x=1")
    left = {c.metadata.name for c in core_v1.list_namespaced_config_map("scratch").items}
    assert left == {"c", "kube-root-ca.crt"}
    core_v1.delete_namespace("scratch")
    fake_cluster.wait_for(lambda: fake_cluster.get("namespaces", "scratch") is None)
    assert fake_cluster.objects("configmaps", "scratch") == []
    with pytest.raises(ApiException) as error:
        core_v1.create_namespaced_config_map("scratch", {"metadata": {"name": "late"}})
    assert error.value.status == 404


TASKMASTER = textwrap.dedent("""
    import os, time
    from kubernetes import client, config
    config.load_kube_config()
    core, batch = client.CoreV1Api(), client.BatchV1Api()
    ns = open("/var/run/secrets/kubernetes.io/serviceaccount/namespace").read()
    job = batch.read_namespaced_job(os.environ["JOB_NAME"], ns)
    owner = [{"apiVersion": "batch/v1", "kind": "Job", "name": job.metadata.name,
              "uid": job.metadata.uid, "blockOwnerDeletion": True}]
    claim = job.metadata.name + "-pvc"
    core.create_namespaced_persistent_volume_claim(ns, {
        "metadata": {"name": claim, "ownerReferences": owner},
        "spec": {"accessModes": ["ReadWriteOnce"],
                 "resources": {"requests": {"storage": "1Gi"}}}})
    results = []
    steps = [["sh", "-c", "echo input > /data/in.txt"],
             ["sh", "-c", "tr a-z A-Z < /data/in.txt; exit 5"]]
    for i, command in enumerate(steps):
        name = f"{job.metadata.name}-ex-{i}"
        core.create_namespaced_pod(ns, {
            "metadata": {"name": name, "ownerReferences": owner},
            "spec": {"restartPolicy": "Never", "automountServiceAccountToken": False,
                     "volumes": [{"name": "work", "persistentVolumeClaim": {"claimName": claim}}],
                     "containers": [{"name": "ex", "image": "alpine", "command": command,
                                     "volumeMounts": [{"name": "work", "mountPath": "/data",
                                                       "subPath": "data"}]}]}})
        while (pod := core.read_namespaced_pod(name, ns)).status.phase not in ("Succeeded",
                                                                                "Failed"):
            time.sleep(0.05)
        code = pod.status.container_statuses[0].state.terminated.exit_code
        results.append(f"{code}:{core.read_namespaced_pod_log(name, ns).strip()}")
    core.create_namespaced_config_map(ns, {
        "metadata": {"name": job.metadata.name + "-status", "ownerReferences": owner,
                     "labels": {"tesk.io/status": "true"}},
        "data": {"results": ";".join(results)}})
""")


def test_a_taskmaster_pod_drives_executor_pods_through_the_api(
    fake_cluster: FakeCluster, core_v1: client.CoreV1Api, batch_v1: client.BatchV1Api
) -> None:
    listed = core_v1.list_namespaced_config_map(NS, label_selector="tesk.io/status=true")
    statuses: list[dict[str, str]] = []
    watcher = watch.Watch()

    def collect() -> None:
        for event in watcher.stream(
            core_v1.list_namespaced_config_map,
            NS,
            label_selector="tesk.io/status=true",
            resource_version=listed.metadata.resource_version,
            timeout_seconds=30,
        ):
            statuses.append(event["object"].data)
            watcher.stop()

    thread = threading.Thread(target=collect, daemon=True)
    thread.start()
    fake_cluster.clear_requests()
    taskmaster_container = {
        "name": "taskmaster",
        "image": "tesk",
        "command": ["python", "-c", TASKMASTER],
        "env": [
            {
                "name": "JOB_NAME",
                "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['job-name']"}},
            }
        ],
    }
    batch_v1.create_namespaced_job(
        NS,
        job("task-1", [], ttlSecondsAfterFinished=60, pod={"containers": [taskmaster_container]}),
    )
    thread.join(timeout=30)
    assert statuses == [{"results": "0:;5:INPUT"}]
    done = finished_job(fake_cluster, "task-1")
    assert any(c["type"] == "Complete" for c in done["status"]["conditions"])
    taskmaster = "system:serviceaccount:tesk:default"
    assert fake_cluster.count_requests("create", "pods", user=taskmaster) == 2
    assert fake_cluster.count_requests("create", "persistentvolumeclaims", user=taskmaster) == 1

    batch_v1.delete_namespaced_job("task-1", NS, propagation_policy="Foreground")
    fake_cluster.wait_for(lambda: fake_cluster.get("jobs", "task-1") is None)
    assert core_v1.list_namespaced_pod(NS).items == []
    assert core_v1.list_namespaced_persistent_volume_claim(NS).items == []
    assert core_v1.list_namespaced_config_map(NS, label_selector="tesk.io/status").items == []
