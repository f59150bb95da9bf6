"""The Kubernetes backend end to end on a real cluster (kind, k3s, ...): marker `k8s_real`.

Skipped unless TESK_TEST_KUBECONFIG names a kubeconfig (see docs/kubernetes.md):

    TESK_TEST_KUBECONFIG=~/.kube/config TESK_TEST_IMAGE=tesk:dev \\
        .venv/bin/pytest -m k8s_real tests/k8s/test_real_cluster.py

TESK_TEST_IMAGE is the TESK image the cluster can run (taskmaster and filer; for kind:
`kind load docker-image tesk:dev`), TESK_TEST_EXECUTOR_IMAGE the executors' image (default
busybox:1.36). Each run uses a fresh namespace with the chart's taskmaster Role, removed after.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from tesk.backends.kubernetes import KubernetesBackend, names
from tesk.config import CustomConfig, KubernetesConfig
from tesk.store.sql import SqlStore
from tesk.tes.states import State, is_terminal
from tests.k8s.backend_env import Deployment, make_service

pytestmark = pytest.mark.k8s_real

KUBECONFIG = os.environ.get("TESK_TEST_KUBECONFIG")
IMAGE = os.environ.get("TESK_TEST_IMAGE", "tesk:dev")
EXECUTOR_IMAGE = os.environ.get("TESK_TEST_EXECUTOR_IMAGE", "busybox:1.36")
VALUES = Path(__file__).resolve().parents[2] / "deployment" / "charts" / "tesk" / "values.yaml"
TIMEOUT_S = 300.0


@pytest.fixture(scope="module")
def api() -> Iterator[client.ApiClient]:
    if not KUBECONFIG:
        pytest.skip("set TESK_TEST_KUBECONFIG to run the real-cluster tests")
    api_client = config.new_client_from_config(config_file=os.path.expanduser(KUBECONFIG))
    yield api_client
    api_client.close()


@pytest.fixture(scope="module")
def namespace(api: client.ApiClient) -> Iterator[str]:
    """A fresh namespace with the taskmaster and executor accounts and the chart's Role."""
    name = f"tesk-test-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(api)
    rbac = client.RbacAuthorizationV1Api(api)
    core.create_namespace({"metadata": {"name": name}})
    try:
        for account in ("tesk-taskmaster", "tesk-executor"):
            core.create_namespaced_service_account(name, {"metadata": {"name": account}})
        rules = yaml.safe_load(VALUES.read_text())["rbac"]["taskmasterRules"]
        rbac.create_namespaced_role(name, {"metadata": {"name": "tesk-taskmaster"}, "rules": rules})
        rbac.create_namespaced_role_binding(
            name,
            {
                "metadata": {"name": "tesk-taskmaster"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "tesk-taskmaster",
                },
                "subjects": [
                    {"kind": "ServiceAccount", "name": "tesk-taskmaster", "namespace": name}
                ],
            },
        )
        yield name
    finally:
        core.delete_namespace(name)


@pytest.fixture
def env(namespace: str, tmp_path: Path) -> Iterator[Deployment]:
    k8s = KubernetesConfig(
        namespace=namespace,
        image=IMAGE,
        kubeconfig=Path(os.path.expanduser(KUBECONFIG or "")),
        executor_service_account="tesk-executor",
        pending_timeout_s=60,
        ttl_seconds_after_finished=5,
        resync_interval_s=10,
    )
    custom = CustomConfig(backend="kubernetes", kubernetes=k8s)
    store = SqlStore(f"sqlite:///{tmp_path / 'tesk.db'}")
    backend = KubernetesBackend(custom, store)
    backend.start()
    deployment = Deployment(None, custom, store, backend, make_service(store, backend, custom))  # type: ignore[arg-type]
    yield deployment
    backend.stop()
    store.close()


def run(env: Deployment, body: dict[str, Any]) -> str:
    task_id = env.submit(body)
    end = time.monotonic() + TIMEOUT_S
    while not is_terminal(env.record(task_id).state):
        assert time.monotonic() < end, f"task {task_id} did not finish"
        time.sleep(1)
    return task_id


def executor(*command: str, **fields: Any) -> dict[str, Any]:
    return {"image": EXECUTOR_IMAGE, "command": list(command), **fields}


def logs_text(env: Deployment, task_id: str) -> str:
    log = env.record(task_id).log
    return "\n".join(log.system_logs or []) if log else ""


def leftovers(env: Deployment, task_id: str) -> list[str]:
    selector = f"{names.LABEL_TASK}={task_id}"
    ns = env.config.kubernetes.namespace
    kube = env.backend.kube
    found = []
    for kind, call in (
        ("jobs", kube.batch.list_namespaced_job),
        ("pods", kube.core.list_namespaced_pod),
        ("pvcs", kube.core.list_namespaced_persistent_volume_claim),
        ("configmaps", kube.core.list_namespaced_config_map),
    ):
        found += [
            f"{kind}/{item.metadata.name}" for item in call(ns, label_selector=selector).items
        ]
    return found


def test_complete_with_separate_streams_then_nothing_left(env: Deployment) -> None:
    task_id = run(env, {"executors": [executor("sh", "-c", "echo out; echo err >&2")]})
    record = env.record(task_id)
    assert record.state == State.COMPLETE, logs_text(env, task_id)
    assert record.log is not None
    assert (record.log.logs[0].stdout, record.log.logs[0].stderr) == ("out\n", "err\n")
    end = time.monotonic() + 120
    while leftovers(env, task_id):
        assert time.monotonic() < end, leftovers(env, task_id)
        time.sleep(2)


def test_content_input_reaches_the_executor_and_its_exit_code(env: Deployment) -> None:
    task_id = run(
        env,
        {
            "inputs": [{"path": "/data/in.txt", "content": "hello"}],
            "executors": [executor("sh", "-c", "cat /data/in.txt; exit 4")],
        },
    )
    record = env.record(task_id)
    assert record.state == State.EXECUTOR_ERROR, logs_text(env, task_id)
    assert record.log is not None
    assert (record.log.logs[0].exit_code, record.log.logs[0].stdout) == (4, "hello")


def test_cancel_leaves_nothing(env: Deployment) -> None:
    task_id = env.submit({"executors": [executor("sleep", "600")]})
    end = time.monotonic() + TIMEOUT_S
    while env.record(task_id).state != State.RUNNING:
        assert time.monotonic() < end
        time.sleep(1)
    env.service.cancel(task_id)
    while env.record(task_id).state != State.CANCELED:
        assert time.monotonic() < end
        time.sleep(1)
    assert leftovers(env, task_id) == []


def test_unschedulable_is_a_system_error(env: Deployment) -> None:
    task_id = run(
        env,
        {
            "executors": [executor("true")],
            "resources": {"backend_parameters": {"node_selector": "tesk.io/no-such-node=true"}},
        },
    )
    assert env.record(task_id).state == State.SYSTEM_ERROR
    assert "Unschedulable" in logs_text(env, task_id) or "node" in logs_text(env, task_id)


def test_an_image_that_cannot_be_pulled_is_a_system_error(env: Deployment) -> None:
    task_id = run(env, {"executors": [{"image": "tesk.invalid/nope:1", "command": ["true"]}]})
    assert env.record(task_id).state == State.SYSTEM_ERROR
    assert "Image" in logs_text(env, task_id)


def test_out_of_memory_is_an_executor_error(env: Deployment) -> None:
    task_id = run(
        env,
        {
            "executors": [executor("sh", "-c", "x=$(head -c 300000000 /dev/zero | tr '\\0' x)")],
            "resources": {"ram_gb": 0.05},
        },
    )
    assert env.record(task_id).state == State.EXECUTOR_ERROR
    assert "OOMKilled" in logs_text(env, task_id)
