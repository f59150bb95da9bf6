"""RBAC and pod security: three accounts, separate rights, no token for executors, non-root API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from dockerfile_parse import DockerfileParser

from tests.deployment.chart import CHART, NAMESPACE, REPO, Manifest, find, one

SEPARATE_NAMESPACE = CHART / "ci" / "postgresql-ingress-values.yaml"  # tasks in "tesk-tasks"


def accounts_by_component(objects: list[Manifest]) -> dict[str, Manifest]:
    return {
        sa["metadata"]["labels"]["app.kubernetes.io/component"]: sa
        for sa in find(objects, "ServiceAccount")
    }


def granted(role: Manifest) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def role_of(objects: list[Manifest], account: Manifest) -> Manifest:
    """The Role bound to a ServiceAccount (exactly one)."""
    bindings = [
        b
        for b in find(objects, "RoleBinding")
        if {"kind": "ServiceAccount", **identity(account)} in b["subjects"]
    ]
    assert len(bindings) == 1, f"{identity(account)} is bound {len(bindings)} times"
    return one(objects, "Role", bindings[0]["roleRef"]["name"])


def identity(account: Manifest) -> dict[str, Any]:
    return {"name": account["metadata"]["name"], "namespace": account["metadata"]["namespace"]}


@pytest.mark.parametrize("values_files", [[], [SEPARATE_NAMESPACE]], ids=["same-ns", "task-ns"])
def test_api_and_taskmaster_accounts_are_distinct_and_bound_in_the_task_namespace(
    render: Callable[..., list[Manifest]], values_files: list[Any]
) -> None:
    objects = render(values_files)
    task_namespace = "tesk-tasks" if values_files else NAMESPACE
    accounts = accounts_by_component(objects)
    assert set(accounts) == {"api", "taskmaster", "executor"}
    assert len({sa["metadata"]["name"] for sa in accounts.values()}) == 3
    assert accounts["api"]["metadata"]["namespace"] == NAMESPACE
    assert accounts["taskmaster"]["metadata"]["namespace"] == task_namespace
    assert accounts["executor"]["metadata"]["namespace"] == task_namespace

    api_role = role_of(objects, accounts["api"])
    taskmaster_role = role_of(objects, accounts["taskmaster"])
    assert api_role["metadata"]["name"] != taskmaster_role["metadata"]["name"]
    for role in (api_role, taskmaster_role):
        assert role["metadata"]["namespace"] == task_namespace
    assert not find(objects, "ClusterRole")
    assert not find(objects, "ClusterRoleBinding")

    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == accounts["api"]["metadata"]["name"]


def test_executors_get_no_token_and_no_rights(render: Callable[..., list[Manifest]]) -> None:
    objects = render()
    executor = accounts_by_component(objects)["executor"]
    assert executor["automountServiceAccountToken"] is False
    for binding in find(objects, "RoleBinding"):
        assert executor["metadata"]["name"] not in {s["name"] for s in binding["subjects"]}


def test_each_role_holds_only_its_own_job(render: Callable[..., list[Manifest]]) -> None:
    objects = render()
    accounts = accounts_by_component(objects)
    api = granted(role_of(objects, accounts["api"]))
    taskmaster = granted(role_of(objects, accounts["taskmaster"]))

    # The API starts, follows and cancels taskmaster Jobs and reads their status ConfigMaps...
    for verb in ("create", "list", "watch", "delete"):
        assert ("batch", "jobs", verb) in api
    assert ("", "configmaps", "create") in api
    assert ("", "configmaps", "watch") in api
    # ...and reads executor pods' logs for the live output...
    assert ("", "pods/log", "get") in api
    assert {g for g in api if g[1] == "pods/log"} == {("", "pods/log", "get")}
    # ...but never runs pods or claims storage itself.
    assert not {g for g in api if g[1] in {"pods", "persistentvolumeclaims"}}

    # The taskmaster runs the task's pods on its PVC and reports through a ConfigMap...
    for needed in [
        ("", "pods", "create"),
        ("", "pods", "delete"),
        ("", "pods", "watch"),
        ("", "pods/log", "get"),
        ("", "persistentvolumeclaims", "create"),
        ("", "configmaps", "update"),
    ]:
        assert needed in taskmaster
    # ...but cannot start other tasks.
    assert ("batch", "jobs", "create") not in taskmaster

    for rights in (api, taskmaster):
        assert not {g for g in rights if "*" in g}
        assert not {
            g for g in rights if g[1] in {"secrets", "roles", "rolebindings", "serviceaccounts"}
        }


def test_rbac_can_be_left_to_the_operator(render: Callable[..., list[Manifest]]) -> None:
    objects = render([CHART / "ci" / "existing-accounts-values.yaml"])
    assert not find(objects, "Role")
    assert not find(objects, "RoleBinding")
    assert not find(objects, "ServiceAccount")
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "tesk-api-managed"


def test_api_pod_runs_non_root_on_a_read_only_root(render: Callable[..., list[Manifest]]) -> None:
    pod = one(render(), "Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    # What must stay writable is a volume: /tmp (gunicorn heartbeats) and the data dir.
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert "persistentVolumeClaim" in volumes[mounts["/var/lib/tesk"]]
    # The volume's group is the image's group, so the non-root user can write the database.
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"]


def test_pod_user_is_the_image_user(render: Callable[..., list[Manifest]]) -> None:
    pod = one(render(), "Deployment")["spec"]["template"]["spec"]
    parser = DockerfileParser(path=str(REPO / "Dockerfile"))
    user = [i["value"] for i in parser.structure if i["instruction"] == "USER"][-1]
    uid, _, gid = user.partition(":")
    assert pod["securityContext"]["runAsUser"] == int(uid)
    assert pod["securityContext"]["runAsGroup"] == int(gid)


def test_probes_use_the_health_endpoints(render: Callable[..., list[Manifest]]) -> None:
    container = one(render(), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["args"][:5] == ["serve", "--host", "0.0.0.0", "--port", "8080"]
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert container["resources"]["limits"]["memory"]
