"""The chart, installed with helm into the real test cluster, takes tasks to COMPLETE.

This is the walk of docs/deployment.md ("From nothing to a first task") on the test cluster
(tests/k8s/cluster, started by `make k8s-up`): users made with `tesk user add` go into a Secret,
the chart is installed with the kind values and basic auth (`helm upgrade --install --wait`, the
image localhost/tesk:dev), and the API is reached through `kubectl port-forward` of its Service.
The API runs in one namespace and its tasks in another, both enforcing Pod Security `restricted`,
with the chart's ServiceAccounts and Roles. A cluster that is not running fails these tests.
"""

from __future__ import annotations

import base64
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import tes

from tesk.backends.kubernetes import names
from tests.deployment.chart import KIND_VALUES, USERS_SECRET, WALK_VALUES, Manifest
from tests.k8s.cluster import Cluster
from tests.k8s.cluster.serve import Release, ensure_namespace, install, port_forward, uninstall
from tests.k8s.realcluster import cluster_or_fail

TESK = Path(sys.executable).with_name("tesk")
TASK = {"name": "hello", "executors": [{"image": "busybox:1.36", "command": ["echo", "hello TES"]}]}
FINISHED = {"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED", "PREEMPTED"}
ALICE = ("alice", "alice-secret")
BOB = ("bob", "bob-secret")
# Creating a task waits for the API server (its Job and ConfigMap): seconds on a busy node.
TIMEOUT = 30


def add_user(users_file: Path, name: str, password: str) -> None:
    """`tesk user add NAME --file users`, as the operator runs it."""
    subprocess.run(
        [str(TESK), "user", "add", name, "--file", str(users_file), "--password-stdin"],
        input=password,
        text=True,
        check=True,
        capture_output=True,
    )


def users_secret(users_file: Path) -> Manifest:
    """`kubectl create secret generic tesk-users --from-file=users=users`."""
    content = base64.b64encode(users_file.read_bytes()).decode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": USERS_SECRET},
        "data": {"users": content},
    }


@pytest.fixture(scope="module")
def test_cluster() -> Cluster:
    try:
        return cluster_or_fail()
    except RuntimeError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture(scope="module")
def release(
    helm: Path, test_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Release]:
    """The chart installed with basic auth (alice and bob) in fresh namespaces, ready."""
    users = tmp_path_factory.mktemp("auth") / "users"
    for name, password in (ALICE, BOB):
        add_user(users, name, password)
    namespace = f"tesk-{uuid.uuid4().hex[:8]}"
    installed = Release(
        namespace=namespace,
        task_namespace=f"{namespace}-tasks",
        values_files=(KIND_VALUES,),
        values=dict(WALK_VALUES),
    )
    try:
        ensure_namespace(test_cluster, installed.namespace)
        test_cluster.request("POST", f"/api/v1/namespaces/{namespace}/secrets", users_secret(users))
        install(test_cluster, installed, helm)
        yield installed
    finally:
        uninstall(test_cluster, installed, helm)


@pytest.fixture(scope="module")
def tes_url(test_cluster: Cluster, release: Release) -> Iterator[str]:
    """The API through `kubectl port-forward` of its Service on a free loopback port."""
    with port_forward(test_cluster, release) as forward:
        yield forward.url


def test_health_endpoints_and_service_info(tes_url: str) -> None:
    assert requests.get(f"{tes_url}/healthz", timeout=TIMEOUT).status_code == 200
    assert requests.get(f"{tes_url}/readyz", timeout=TIMEOUT).status_code == 200
    # service-info is open: no credentials needed.
    info = tes.HTTPClient(tes_url).get_service_info()
    assert info.type is not None
    assert info.type["artifact"] == "tes"


def test_a_first_task_completes_with_basic_credentials(
    tes_url: str, test_cluster: Cluster, release: Release
) -> None:
    tasks = f"{tes_url}/ga4gh/tes/v1/tasks"
    assert requests.post(tasks, json=TASK, timeout=TIMEOUT).status_code == 401
    wrong = requests.post(tasks, json=TASK, auth=("alice", "wrong"), timeout=TIMEOUT)
    assert wrong.status_code == 401

    created = requests.post(tasks, json=TASK, auth=ALICE, timeout=TIMEOUT)
    assert created.status_code == 200, created.text
    task_id = created.json()["id"]
    deadline = time.monotonic() + 180
    while True:
        task = requests.get(f"{tasks}/{task_id}?view=FULL", auth=ALICE, timeout=TIMEOUT).json()
        if task["state"] in FINISHED or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert task["state"] == "COMPLETE", task
    assert task["logs"][-1]["logs"][0]["stdout"] == "hello TES\n"
    # Another user does not see alice's task.
    other = requests.get(f"{tasks}/{task_id}", auth=BOB, timeout=TIMEOUT)
    assert other.status_code == 404

    # The task ran in the task namespace, which enforces Pod Security `restricted`.
    jobs = test_cluster.request(
        "GET",
        f"/apis/batch/v1/namespaces/{release.task_namespace}/jobs"
        f"?labelSelector={names.LABEL_TASK}%3D{task_id}",
    )
    assert isinstance(jobs, dict)
    assert len(jobs["items"]) == 1
    namespace = test_cluster.request("GET", f"/api/v1/namespaces/{release.task_namespace}")
    assert isinstance(namespace, dict)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_a_task_runs_to_completion_with_py_tes(tes_url: str) -> None:
    client = tes.HTTPClient(tes_url, user=ALICE[0], password=ALICE[1], timeout=TIMEOUT)
    task_id = client.create_task(
        tes.Task(
            name="chart smoke test",
            executors=[tes.Executor(image="busybox:1.36", command=["echo", "hello from TESK"])],
        )
    )
    client.wait(task_id, timeout=180)
    task = client.get_task(task_id, view="FULL")
    assert task.state == "COMPLETE", task.logs
    assert task.logs is not None
    assert task.logs[-1].logs is not None
    assert "hello from TESK" in (task.logs[-1].logs[0].stdout or "")
