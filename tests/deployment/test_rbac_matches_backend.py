"""The chart's RBAC grants exactly what the Kubernetes backend calls: no more, no less.

The chart's rendered ServiceAccounts, Roles and RoleBindings are created in a fresh namespace of
the real test cluster (enforcing Pod Security `restricted`). The backend runs here with a
kubeconfig holding a token of the chart's API ServiceAccount (from the TokenRequest API), and its
taskmasters run in the cluster as the chart's taskmaster ServiceAccount. The API server's audit
log then shows every request of both accounts: each must be allowed, and every verb a Role grants
must have been used by that account — except the one permission only admission needs (setting
blockOwnerDeletion on ownerReferences).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml

from tesk.backends.kubernetes import names
from tesk.tes.states import State, is_terminal
from tests.deployment.chart import Manifest, find
from tests.k8s.backend_env import deployment, task
from tests.k8s.realcluster import TestCluster, cluster_or_fail, new_namespace

Grant = tuple[str, str, str]  # (apiGroup, resource[/subresource], verb)

# Needed by the OwnerReferencesPermissionEnforcement admission plugin to set blockOwnerDeletion on
# objects owned by a Job; no request names it.
ADMISSION_ONLY: set[Grant] = {("batch", "jobs/finalizers", "update")}
# A request no node of the test cluster can meet: the executor pod stays pending.
TOO_MANY_CORES = 64
# Long enough for a taskmaster to start on a busy node; the executor of `stuck` waits this long.
PENDING_TIMEOUT_S = 60
TASKMASTERS = f"{names.LABEL_COMPONENT}={names.COMPONENT_TASKMASTER}"


def granted(role: Manifest) -> set[Grant]:
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def used(events: list[dict[str, Any]]) -> set[Grant]:
    found = set()
    for event in events:
        ref = event.get("objectRef") or {}
        if not ref.get("resource"):
            continue
        resource = ref["resource"]
        if ref.get("subresource"):
            resource += f"/{ref['subresource']}"
        found.add((ref.get("apiGroup", ""), resource, event["verb"]))
    return found


def denied(events: list[dict[str, Any]]) -> list[str]:
    return [
        f"{e['verb']} {e.get('requestURI')}: {e['responseStatus'].get('code')}"
        for e in events
        if (e.get("responseStatus") or {}).get("code") == 403
    ]


def in_namespace(objects: list[Manifest], namespace: str) -> list[Manifest]:
    """The chart's objects as if it were installed into `namespace`."""
    moved: list[Manifest] = json.loads(json.dumps(objects))
    for obj in moved:
        obj["metadata"]["namespace"] = namespace
        for subject in obj.get("subjects", []):
            subject["namespace"] = namespace
    return moved


def account(objects: list[Manifest], component: str) -> str:
    (found,) = [
        o
        for o in find(objects, "ServiceAccount")
        if o["metadata"]["labels"]["app.kubernetes.io/component"] == component
    ]
    return str(found["metadata"]["name"])


def role(objects: list[Manifest], component: str) -> Manifest:
    (found,) = [
        o
        for o in find(objects, "Role")
        if o["metadata"]["labels"]["app.kubernetes.io/component"] == component
    ]
    return found


def token_kubeconfig(cluster: TestCluster, service_account: str, path: Path) -> Path:
    """The admin kubeconfig's server and CA with a token of the ServiceAccount instead."""
    request = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"expirationSeconds": 3600},
    }
    answer = cluster.cluster.request(
        "POST",
        f"/api/v1/namespaces/{cluster.namespace}/serviceaccounts/{service_account}/token",
        request,
    )
    assert isinstance(answer, dict)
    config: dict[str, Any] = yaml.safe_load(Path(cluster.kubeconfig_path).read_text())
    config["users"][0]["user"] = {"token": answer["status"]["token"]}
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def chart_objects(render: Callable[..., list[Manifest]]) -> list[Manifest]:
    return render()


@pytest.fixture
def rbac_cluster(chart_objects: list[Manifest]) -> Iterator[TestCluster]:
    """A fresh namespace enforcing `restricted` with the chart's accounts, Roles and bindings."""
    try:
        real = cluster_or_fail()
    except RuntimeError as error:
        pytest.fail(str(error), pytrace=False)
    view = TestCluster(real, new_namespace())
    labels = {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
    }
    real.request(
        "POST",
        "/api/v1/namespaces",
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": view.namespace, "labels": labels},
        },
    )
    try:
        for kind in ("ServiceAccount", "Role", "RoleBinding"):
            for obj in find(in_namespace(chart_objects, view.namespace), kind):
                view.apply(obj)
        yield view
    finally:
        view.remove()


def test_the_roles_grant_exactly_what_tasks_use(
    rbac_cluster: TestCluster, chart_objects: list[Manifest], tmp_path: Path
) -> None:
    cluster = rbac_cluster
    api_account = account(chart_objects, "api")
    taskmaster_account = account(chart_objects, "taskmaster")
    executor_account = account(chart_objects, "executor")
    with deployment(
        cluster,
        kubeconfig=str(token_kubeconfig(cluster, api_account, tmp_path / "api-kubeconfig")),
        taskmaster_service_account=taskmaster_account,
        executor_service_account=executor_account,
        pending_timeout_s=PENDING_TIMEOUT_S,
    ) as env:
        # A task that completes, one cancelled while it runs, one whose taskmaster is lost, one
        # whose executor never starts.
        done = env.submit(task(["echo", "hello"]))
        running = env.submit(task(["sleep", "60"]))
        lost = env.submit(task(["sleep", "60"]))
        stuck = env.submit(task(["true"]) | {"resources": {"cpu_cores": TOO_MANY_CORES}})
        for task_id in (running, lost):
            record = env.wait_state(task_id, lambda s: s == State.RUNNING or is_terminal(s), 120)
            assert record.state == State.RUNNING, record.log.system_logs if record.log else None
            executor = names.TaskNames(task_id).executor_pod(0)
            cluster.wait_for(partial(cluster.get, "pods", executor), timeout=120)
        # The live output of a running executor: the API reads its pod's log.
        answer = env.service.executor_output(running, "0", "stdout")
        b"".join(answer.body)
        answer.body.close()
        env.service.cancel(running)
        (taskmaster,) = cluster.objects(
            "pods", labelSelector=f"{TASKMASTERS},{names.LABEL_TASK}={lost}"
        )
        cluster.delete("pods", taskmaster["metadata"]["name"], gracePeriodSeconds=0)
        for task_id, state in (
            (done, State.COMPLETE),
            (running, State.CANCELED),
            (lost, State.SYSTEM_ERROR),
            (stuck, State.SYSTEM_ERROR),
        ):
            record = env.wait_state(task_id, timeout=180)
            assert record.state == state, record.log.system_logs if record.log else None
        # And one whose taskmaster pod the API server refuses: the API reads the Job's events.
        cluster.apply(
            {
                "apiVersion": "v1",
                "kind": "ResourceQuota",
                "metadata": {"name": "no-more-pods"},
                "spec": {"hard": {"pods": "0"}},
            }
        )
        refused = env.submit(task(["true"]))
        record = env.wait_state(refused, timeout=PENDING_TIMEOUT_S - 10)
        assert record.state == State.SYSTEM_ERROR
        assert record.log is not None
        assert "exceeded quota" in " ".join(record.log.system_logs or [])

        # Taskmasters write their last requests (the volume's deletion) after the final report.
        def taskmasters_finished() -> bool:
            pods = cluster.objects("pods", labelSelector=TASKMASTERS)
            return all(p["status"].get("phase") in ("Succeeded", "Failed") for p in pods)

        cluster.wait_for(taskmasters_finished, timeout=120)

    prefix = f"system:serviceaccount:{cluster.namespace}:"
    api = cluster.audit(prefix + api_account)
    taskmaster_requests = cluster.audit(prefix + taskmaster_account)
    assert denied(api) == [], "requests of the API the chart's Role does not allow"
    assert denied(taskmaster_requests) == [], "requests of taskmasters their Role does not allow"
    assert used(api) == granted(role(chart_objects, "api")) - ADMISSION_ONLY
    assert used(taskmaster_requests) == granted(role(chart_objects, "taskmaster")) - ADMISSION_ONLY
    # Executors and filers never talk to the API server.
    for other in (executor_account, "default"):
        assert cluster.audit(prefix + other) == [], other
