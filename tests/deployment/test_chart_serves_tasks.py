"""The chart's API pod, exactly as rendered, takes a task with credentials to COMPLETE.

This is the walk of docs/deployment.md ("From nothing to a first task") on a fake cluster
(tests/k8s/fakecluster): users made with `tesk user add` go into a Secret, the chart is rendered
with the kind values and basic auth, and its objects are created as `helm install` would. The fake
enforces the chart's Roles and gives pods in-cluster credentials; its kubelet runs the API pod's
command on this machine with the chart's ConfigMap, Secret and PVC mounted where the Deployment
says. So the rendered FOCA config, the users Secret mount, the API ServiceAccount's in-cluster
credentials and the RBAC are used as a cluster uses them. Not covered here: the image itself (the
kubelet runs this checkout's `tesk`) and what only a real cluster shows (test_chart_real_cluster).
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from dockerfile_parse import DockerfileParser

from tests.deployment.chart import (
    KIND_VALUES,
    NAMESPACE,
    REPO,
    USERS_SECRET,
    WALK_VALUES,
    Manifest,
    find,
    one,
)
from tests.k8s.fakecluster import FakeCluster

TESK = Path(sys.executable).with_name("tesk")
TASK = {"name": "hello", "executors": [{"image": "busybox:1.36", "command": ["echo", "hello TES"]}]}
FINISHED = {"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED", "PREEMPTED"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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
        "metadata": {"name": USERS_SECRET, "namespace": NAMESPACE},
        "data": {"users": content},
    }


def api_pod(objects: list[Manifest]) -> Manifest:
    """A pod of the chart's Deployment, as its ReplicaSet would create it.

    The fake kubelet runs commands, not images, so the image's ENTRYPOINT becomes the command,
    and it shares this machine's network, so the API listens on loopback instead of 0.0.0.0.
    """
    template = one(objects, "Deployment")["spec"]["template"]
    spec: dict[str, Any] = json.loads(json.dumps(template["spec"]))
    container = spec["containers"][0]
    entrypoint = [
        i["value"]
        for i in DockerfileParser(path=str(REPO / "Dockerfile")).structure
        if i["instruction"] == "ENTRYPOINT"
    ][-1]
    container["command"] = json.loads(entrypoint)
    container["args"] = ["127.0.0.1" if arg == "0.0.0.0" else arg for arg in container["args"]]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "tesk-api",
            "namespace": NAMESPACE,
            "labels": template["metadata"]["labels"],
        },
        "spec": spec,
    }


@pytest.fixture
def served(render: Callable[..., list[Manifest]], tmp_path: Path) -> Iterator[str]:
    """The chart installed on a fake cluster with basic auth; the API's URL."""
    if shutil.which("bwrap") is None:
        pytest.skip("the fake kubelet runs pods in bubblewrap: apt-get install bubblewrap")
    users = tmp_path / "users"
    add_user(users, "alice", "alice-secret")
    add_user(users, "bob", "bob-secret")
    port = free_port()
    objects = render([KIND_VALUES], **WALK_VALUES, containerPort=port)
    with FakeCluster(namespace=NAMESPACE, rbac=True, in_cluster=True) as cluster:
        for kind in ("ServiceAccount", "Role", "RoleBinding", "ConfigMap", "PersistentVolumeClaim"):
            for obj in find(objects, kind):
                cluster.apply(obj)
        cluster.apply(users_secret(users))
        pod = cluster.apply(api_pod(objects))["metadata"]["name"]
        url = f"http://127.0.0.1:{port}"

        def previous_log(name: str) -> str:
            uid = cluster.get("pods", name)["metadata"]["uid"]  # type: ignore[index]
            log = cluster.logbook.previous(uid, "tesk")
            return log.text().decode(errors="replace") if log else ""

        def ready() -> bool:
            status = (cluster.get("pods", pod) or {}).get("status", {})
            if any(c.get("restartCount") for c in status.get("containerStatuses", [])):
                pytest.fail(f"the API container exited:\n{previous_log(pod)}", pytrace=False)
            try:
                return requests.get(f"{url}/readyz", timeout=2).status_code == 200
            except (requests.ConnectionError, requests.Timeout):
                return False

        try:
            cluster.wait_for(ready, timeout=60, interval=0.2)
        except TimeoutError:
            pytest.fail(f"the API pod did not get ready:\n{cluster.logs(pod)}", pytrace=False)
        yield url
        assert cluster.errors == [], "\n".join(cluster.errors)


def test_a_first_task_completes_with_basic_credentials(served: str) -> None:
    tasks = f"{served}/ga4gh/tes/v1/tasks"
    alice = ("alice", "alice-secret")
    assert requests.get(f"{served}/ga4gh/tes/v1/service-info", timeout=10).status_code == 200
    assert requests.post(tasks, json=TASK, timeout=10).status_code == 401
    assert requests.post(tasks, json=TASK, auth=("alice", "wrong"), timeout=10).status_code == 401

    created = requests.post(tasks, json=TASK, auth=alice, timeout=10)
    assert created.status_code == 200, created.text
    task_id = created.json()["id"]
    deadline = time.monotonic() + 90
    while True:
        task = requests.get(f"{tasks}/{task_id}?view=FULL", auth=alice, timeout=10).json()
        if task["state"] in FINISHED or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert task["state"] == "COMPLETE", task
    assert task["logs"][-1]["logs"][0]["stdout"] == "hello TES\n"
    # Another user does not see alice's task.
    other = requests.get(f"{tasks}/{task_id}", auth=("bob", "bob-secret"), timeout=10)
    assert other.status_code == 404
