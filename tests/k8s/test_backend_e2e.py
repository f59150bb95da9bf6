"""End to end on the real test cluster: TesService -> Kubernetes backend -> taskmaster Job ->
executor (and filer) pods -> status ConfigMap -> reconciler -> store.

The taskmaster is `tesk taskmaster` in the TESK image, in a namespace that enforces Pod Security
`restricted`; failures are the real ones (the scheduler's, the kubelet's, the OOM killer's, the
Eviction API's). See docs/testing-kubernetes.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tesk.backends.kubernetes import KubernetesBackend, names
from tesk.store.sql import SqlStore
from tesk.tes.errors import InvalidRequest
from tesk.tes.states import State
from tests.k8s.backend_env import Deployment, deployment, make_service, task
from tests.k8s.cluster.cluster import NO_FSGROUP_CLASS
from tests.k8s.realcluster import EXECUTOR_IMAGE, TestCluster

EXECUTORS = f"{names.LABEL_COMPONENT}={names.COMPONENT_EXECUTOR}"
TASKMASTERS = f"{names.LABEL_COMPONENT}={names.COMPONENT_TASKMASTER}"
KINDS = ("jobs", "pods", "persistentvolumeclaims", "configmaps")


# A request no node of the test cluster (2 cores) can meet.
TOO_MANY_CORES = "64"


@pytest.fixture
def env(cluster: TestCluster, tmp_path: Path) -> Iterator[Deployment]:
    store = SqlStore(f"sqlite:///{tmp_path / 'tesk.db'}")
    with deployment(cluster, store=store) as running:
        yield running
    store.close()


def leftovers(cluster: TestCluster, task_id: str) -> list[str]:
    found = []
    for kind in KINDS:
        for obj in cluster.objects(kind, labelSelector=f"{names.LABEL_TASK}={task_id}"):
            found.append(f"{kind}/{obj['metadata']['name']}")
    return found


def system_logs(env: Deployment, task_id: str) -> str:
    log = env.record(task_id).log
    return "\n".join(log.system_logs or []) if log else ""


def test_a_task_completes_with_exit_codes_and_separate_stdout_stderr(env: Deployment) -> None:
    task_id = env.submit(
        {
            "executors": [
                {"image": EXECUTOR_IMAGE, "command": ["sh", "-c", "echo out-1; echo err-1 >&2"]},
                {
                    "image": EXECUTOR_IMAGE,
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
                {"image": EXECUTOR_IMAGE, "command": ["false"], "ignore_error": True},
                {"image": EXECUTOR_IMAGE, "command": ["echo", "after"]},
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
                    "image": EXECUTOR_IMAGE,
                    "command": ["sh", "-c", "echo to-file; echo err-file >&2"],
                    "stdout": "/logs/out.txt",
                    "stderr": "/logs/err.txt",
                },
                {"image": EXECUTOR_IMAGE, "command": ["cat", "/logs/out.txt", "/logs/err.txt"]},
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
    cluster: TestCluster, tmp_path: Path
) -> None:
    with deployment(cluster, ttl_seconds_after_finished=1) as env:
        task_id = env.submit(task(["true"]))
        assert env.wait_state(task_id).state == State.COMPLETE
        cluster.wait_for(lambda: not leftovers(cluster, task_id), timeout=20)
        assert env.record(task_id).state == State.COMPLETE


def test_cancel_removes_everything_and_ends_canceled(env: Deployment, cluster: TestCluster) -> None:
    task_id = env.submit(task(["sh", "-c", "echo started; sleep 60"]))
    cluster.wait_for(lambda: cluster.get("pods", names.TaskNames(task_id).executor_pod(0)))
    env.wait_state(task_id, lambda s: s == State.RUNNING)
    env.service.cancel(task_id)
    assert env.record(task_id).state in (State.CANCELING, State.CANCELED)
    record = env.wait_state(task_id)
    assert record.state == State.CANCELED
    # CANCELED only once the Job is gone, and it goes last.
    assert leftovers(cluster, task_id) == []


def test_cancel_of_a_queued_task_before_its_taskmaster_runs(cluster: TestCluster) -> None:
    with deployment(cluster, taskmaster_cpu=TOO_MANY_CORES) as env:
        task_id = env.submit(task(["true"]))
        env.service.cancel(task_id)
        assert env.wait_state(task_id).state == State.CANCELED
        assert leftovers(cluster, task_id) == []


@pytest.mark.parametrize(
    ("executor", "reason"),
    [
        (
            {"image": EXECUTOR_IMAGE, "command": ["true"]},
            "Insufficient cpu",
        ),
        ({"image": "tesk.invalid/no-such-image:1", "command": ["true"]}, "ImagePull"),
    ],
    ids=["unschedulable", "image-pull"],
)
def test_an_executor_pending_past_the_timeout_is_a_system_error(
    cluster: TestCluster, executor: dict[str, object], reason: str
) -> None:
    body: dict[str, object] = {"executors": [executor]}
    if reason == "Insufficient cpu":
        body["resources"] = {"cpu_cores": int(TOO_MANY_CORES)}
    with deployment(cluster, pending_timeout_s=15) as env:
        task_id = env.submit(body)
        record = env.wait_state(task_id, timeout=120)
        assert record.state == State.SYSTEM_ERROR
        logs = system_logs(env, task_id)
        assert "still pending after 15 s" in logs
        assert reason in logs
        pod = names.TaskNames(task_id).executor_pod(0)
        cluster.wait_for(lambda: cluster.get("pods", pod) is None)


def test_a_taskmaster_that_never_starts_is_a_system_error(cluster: TestCluster) -> None:
    with deployment(cluster, pending_timeout_s=3, taskmaster_cpu=TOO_MANY_CORES) as env:
        task_id = env.submit(task(["true"]))
        assert env.wait_state(task_id).state == State.SYSTEM_ERROR
        assert "the taskmaster did not start within 3 s" in system_logs(env, task_id)
        cluster.wait_for(lambda: not leftovers(cluster, task_id))


def test_an_oom_killed_executor_is_an_executor_error_with_the_reason(env: Deployment) -> None:
    # The kernel's OOM killer, through the container's memory limit (52 MiB).
    grow = "x=$(head -c 300000000 /dev/zero | tr '\\0' x)"
    task_id = env.submit(task(["sh", "-c", grow]) | {"resources": {"ram_gb": 0.05}})
    record = env.wait_state(task_id)
    assert record.state == State.EXECUTOR_ERROR
    assert record.log is not None
    assert record.log.logs[0].exit_code == 137
    assert "OOMKilled" in system_logs(env, task_id)


def test_an_evicted_executor_is_preempted(env: Deployment, cluster: TestCluster) -> None:
    one_attempt = {"backend_parameters": {"max_attempts": "1"}}
    task_id = env.submit(task(["sleep", "60"], resources=one_attempt))
    executor = names.TaskNames(task_id).executor_pod(0)
    env.wait_state(task_id, lambda s: s == State.RUNNING)
    cluster.wait_for(
        lambda: (cluster.get("pods", executor) or {}).get("status", {}).get("phase") == "Running"
    )
    cluster.evict(executor)
    record = env.wait_state(task_id)
    assert record.state == State.PREEMPTED, system_logs(env, task_id)
    assert "preempted" in system_logs(env, task_id)


def test_a_lost_taskmaster_is_a_system_error_and_its_pods_are_removed(
    env: Deployment, cluster: TestCluster
) -> None:
    task_id = env.submit(task(["sleep", "60"]))
    executor = names.TaskNames(task_id).executor_pod(0)
    cluster.wait_for(lambda: cluster.get("pods", executor))
    env.wait_state(task_id, lambda s: s == State.RUNNING)
    (taskmaster,) = cluster.objects(
        "pods", labelSelector=f"{TASKMASTERS},{names.LABEL_TASK}={task_id}"
    )
    cluster.delete("pods", taskmaster["metadata"]["name"], gracePeriodSeconds=0)
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
    cluster: TestCluster, tmp_path: Path
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
            timeout=120,
        )
        assert env.record(task_id).state == State.QUEUED  # nothing applied it yet
        env.backend.start()
        record = env.wait_state(task_id)
        assert record.state == State.COMPLETE
        assert record.log is not None
        assert record.log.logs[0].stdout == "while down\n"
    store.close()


def test_the_volume_is_deleted_when_the_task_ends_before_the_ttl(
    env: Deployment, cluster: TestCluster
) -> None:
    task_id = env.submit(task(["true"]))
    assert env.wait_state(task_id).state == State.COMPLETE
    tn = names.TaskNames(task_id)
    cluster.wait_for(lambda: cluster.get("persistentvolumeclaims", tn.volume) is None)
    assert cluster.get("jobs", tn.job) is not None  # kept until its TTL, with its pods' logs


def test_two_api_replicas_reconcile_the_same_tasks(env: Deployment, cluster: TestCluster) -> None:
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


def test_a_second_submit_completes_a_half_done_one(cluster: TestCluster) -> None:
    # The API process died after creating the Job and before its task ConfigMap: submitting again
    # (what the reconciler does for a QUEUED task) keeps the Job and creates the ConfigMap.
    with deployment(cluster, start=False) as env:
        task_id = env.submit(task(["echo", "once"]))
        tn = names.TaskNames(task_id)
        cluster.delete("configmaps", tn.task_configmap)
        env.backend.submit(env.record(task_id))
        jobs = [j["metadata"]["name"] for j in cluster.objects("jobs")]
        assert jobs == [tn.job]
        env.backend.start()
        record = env.wait_state(task_id)
    assert record.state == State.COMPLETE, record.log
    assert record.log is not None
    assert record.log.logs[0].stdout == "once\n"


def test_a_content_input_reaches_a_non_root_executor_through_fsgroup(env: Deployment) -> None:
    # The volume's root is root's, mode 0755: the filer (uid 10001) and the executor write to it
    # only because the kubelet applied the pods' fsGroup.
    task_id = env.submit(
        {
            "inputs": [{"path": "/data/in.txt", "content": "hello"}],
            "executors": [
                {
                    "image": EXECUTOR_IMAGE,
                    "command": ["sh", "-c", "cat /data/in.txt; id -u; touch /data/new; exit 4"],
                }
            ],
        }
    )
    record = env.wait_state(task_id)
    assert record.state == State.EXECUTOR_ERROR, system_logs(env, task_id)
    assert record.log is not None
    assert (record.log.logs[0].exit_code, record.log.logs[0].stdout) == (4, "hello10001\n")


@pytest.mark.parametrize(
    ("executor", "field"),
    [
        ({"image": "Busybox:1.36", "command": ["true"]}, r"executors\[0\]\.image"),
        (
            {"image": EXECUTOR_IMAGE, "command": ["true"], "env": {"A=B": "x"}},
            r"executors\[0\]\.env",
        ),
    ],
)
def test_what_the_cluster_would_refuse_is_refused_at_create(
    env: Deployment, cluster: TestCluster, executor: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidRequest, match=field):
        env.submit({"executors": [executor]})
    assert cluster.objects("jobs") == []


def test_a_volume_that_ignores_fsgroup_fails_the_task_saying_so(cluster: TestCluster) -> None:
    with deployment(cluster, storage_class=NO_FSGROUP_CLASS) as env:
        task_id = env.submit(
            {
                "inputs": [{"path": "/data/in.txt", "content": "hello"}],
                "executors": [{"image": EXECUTOR_IMAGE, "command": ["cat", "/data/in.txt"]}],
            }
        )
        record = env.wait_state(task_id)
        assert record.state == State.SYSTEM_ERROR
        logs = system_logs(env, task_id)
        assert "not writable by uid 10001" in logs
        assert "owned by 0:0 with mode 0755" in logs
        assert "did not apply fsGroup" in logs


def test_an_executors_usage_comes_from_its_containers_cgroup(env: Deployment) -> None:
    # About a second of CPU, and a few MiB held in memory, as the container's cgroup counts them.
    burn = (
        "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; "
        "dd if=/dev/zero of=/dev/null bs=16777216 count=1"
    )
    task_id = env.submit({"executors": [{"image": EXECUTOR_IMAGE, "command": ["sh", "-c", burn]}]})
    record = env.wait_state(task_id)
    assert record.state == State.COMPLETE, system_logs(env, task_id)
    metadata = env.service.get(task_id, "FULL")["logs"][0]["metadata"]
    print({k: v for k, v in metadata.items() if k.startswith("usage.")})
    cpu = float(metadata["usage.executor.0.cpu_seconds"])
    assert 0.05 < cpu < 60
    assert float(metadata["usage.cpu_seconds"]) == cpu
    peak = int(metadata["usage.executor.0.peak_memory_bytes"])
    # dd holds its 16 MiB block; the container's limit on this cluster is far above.
    assert 16 * 1024**2 < peak < 4 * 1024**3
    assert metadata["usage.peak_memory_bytes"] == str(peak)
