"""The chart's RBAC grants exactly what the Kubernetes backend calls: no more, no less.

Tasks run on a fake cluster that enforces the chart's rendered Roles, with the API using the
chart's API ServiceAccount and taskmasters the chart's taskmaster ServiceAccount. Every request
must be allowed, and every verb a Role grants must have been used by someone of that account —
except the one permission only admission needs (setting blockOwnerDeletion on ownerReferences).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from tesk.backends.kubernetes import names
from tesk.tes.states import State
from tests.deployment.chart import NAMESPACE, Manifest, find
from tests.k8s.backend_env import deployment, task
from tests.k8s.fakecluster import FakeCluster, Unschedulable, labels_match

Grant = tuple[str, str, str]  # (apiGroup, resource[/subresource], verb)

# Needed by the OwnerReferencesPermissionEnforcement admission plugin to set blockOwnerDeletion on
# objects owned by a Job; no request names it.
ADMISSION_ONLY: set[Grant] = {("batch", "jobs/finalizers", "update")}
GROUPS = {"jobs": "batch"}


def granted(role: Manifest) -> set[Grant]:
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def used(cluster: FakeCluster, user: str) -> set[Grant]:
    found = set()
    for request in cluster.requests:
        if request.user != user or not request.resource:
            continue
        resource = request.resource
        if request.subresource:
            resource += f"/{request.subresource}"
        found.add((GROUPS.get(request.resource, ""), resource, request.verb))
    return found


def kubeconfig_for(cluster: FakeCluster, token: str, path: Path) -> Path:
    config: dict[str, Any] = yaml.safe_load(Path(cluster.kubeconfig_path).read_text())
    config["users"][0]["user"] = {"token": token}
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def chart_objects(render: Callable[..., list[Manifest]]) -> list[Manifest]:
    return render()


@pytest.fixture
def rbac_cluster(chart_objects: list[Manifest]) -> Iterator[FakeCluster]:
    if shutil.which("bwrap") is None:
        pytest.skip("the fake kubelet runs pods in bubblewrap: apt-get install bubblewrap")
    with FakeCluster(namespace=NAMESPACE, rbac=True) as cluster:
        for kind in ("ServiceAccount", "Role", "RoleBinding"):
            for obj in find(chart_objects, kind):
                cluster.apply(obj)
        yield cluster
        assert cluster.errors == [], "\n".join(cluster.errors)


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


def test_the_roles_grant_exactly_what_tasks_use(
    rbac_cluster: FakeCluster, chart_objects: list[Manifest], tmp_path: Path
) -> None:
    cluster = rbac_cluster
    api_account = account(chart_objects, "api")
    taskmaster_account = account(chart_objects, "taskmaster")
    token = cluster.tokens.for_service_account(NAMESPACE, api_account)
    with deployment(
        cluster,
        kubeconfig=str(kubeconfig_for(cluster, token, tmp_path / "api-kubeconfig")),
        taskmaster_service_account=taskmaster_account,
        executor_service_account=account(chart_objects, "executor"),
        pending_timeout_s=3,
        create_accounts=False,
    ) as env:
        # A task that completes, one cancelled while it runs, one whose taskmaster is lost, one
        # whose executor never starts.
        done = env.submit(task(["echo", "hello"]))
        running = env.submit(task(["sleep", "60"]))
        lost = env.submit(task(["sleep", "60"]))
        for task_id in (running, lost):
            env.wait_state(task_id, lambda s: s == State.RUNNING)
            cluster.wait_for(
                lambda t=task_id: cluster.get("pods", names.TaskNames(t).executor_pod(0))
            )
        env.service.cancel(running)
        admin = client.CoreV1Api(config.new_client_from_config(cluster.kubeconfig_path))
        admin.delete_collection_namespaced_pod(
            NAMESPACE,
            label_selector=f"{names.LABEL_TASK}={lost},app.kubernetes.io/component=taskmaster",
        )
        assert env.wait_state(done).state == State.COMPLETE
        cluster.script(labels_match("app.kubernetes.io/component=executor"), Unschedulable())
        stuck = env.submit(task(["true"]))
        assert env.wait_state(running).state == State.CANCELED
        assert env.wait_state(lost).state == State.SYSTEM_ERROR
        assert env.wait_state(stuck).state == State.SYSTEM_ERROR

    denied = [r for r in cluster.requests if r.code == 403]
    assert denied == [], f"requests the chart's Roles do not allow: {denied}"
    api_user = f"system:serviceaccount:{NAMESPACE}:{api_account}"
    taskmaster_user = f"system:serviceaccount:{NAMESPACE}:{taskmaster_account}"
    assert used(cluster, api_user) == granted(role(chart_objects, "api")) - ADMISSION_ONLY
    assert (
        used(cluster, taskmaster_user)
        == granted(role(chart_objects, "taskmaster")) - ADMISSION_ONLY
    )
    # Executors and filers never talk to the API server.
    users = {r.user for r in cluster.requests}
    assert users <= {api_user, taskmaster_user, "fakecluster-admin"}
