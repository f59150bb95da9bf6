"""The chart lints, and every values file it ships renders into objects Kubernetes accepts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import kubernetes_validate
import pytest

from tests.deployment.chart import (
    CHART,
    NAMESPACE,
    SHIPPED_VALUES,
    HelmResult,
    Manifest,
    find,
    one,
    values_id,
)

# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion), the newest the validator knows.
KUBERNETES_VERSIONS = ["1.27.0", kubernetes_validate.latest_version()]
VALUES_CASES = [pytest.param([], id="defaults")] + [
    pytest.param([path], id=values_id(path)) for path in SHIPPED_VALUES
]


def test_shipped_values_include_postgresql_with_ingress() -> None:
    names = {path.name for path in SHIPPED_VALUES}
    assert "postgresql-ingress-values.yaml" in names
    assert "postgresql-ingress-oidc-values.yaml" in names
    assert "basic-auth-values.yaml" in names
    assert "kind-values.yaml" in names


@pytest.mark.parametrize("values_files", VALUES_CASES)
def test_helm_lint_passes(run_helm: Callable[..., HelmResult], values_files: list[Path]) -> None:
    args = ["lint", "--strict", str(CHART), "--namespace", NAMESPACE]
    for values_file in values_files:
        args += ["--values", str(values_file)]
    result = run_helm(*args)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("values_files", VALUES_CASES)
def test_every_rendered_object_is_valid_kubernetes(
    render: Callable[..., list[Manifest]], values_files: list[Path]
) -> None:
    objects = render(values_files)
    assert objects
    problems = []
    for obj in objects:
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                first_line = str(error).splitlines()[0]
                problems.append(
                    f"{obj['kind']}/{obj['metadata']['name']} @ {version}: {first_line}"
                )
    assert not problems, "\n".join(problems)


def test_defaults_render_a_single_sqlite_api_with_its_volume(
    render: Callable[..., list[Manifest]],
) -> None:
    objects = render()
    kinds = sorted(o["kind"] for o in objects)
    assert kinds == sorted(
        [
            "ConfigMap",
            "Deployment",
            "PersistentVolumeClaim",
            "Role",
            "Role",
            "RoleBinding",
            "RoleBinding",
            "Service",
            "ServiceAccount",
            "ServiceAccount",
            "ServiceAccount",
        ]
    )
    deployment = one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    # A ReadWriteOnce SQLite volume cannot be shared by the old and the new pod during an update.
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    pvc = one(objects, "PersistentVolumeClaim")
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_postgresql_release_scales_out_behind_an_ingress(
    render: Callable[..., list[Manifest]],
) -> None:
    objects = render([CHART / "ci" / "postgresql-ingress-values.yaml"])
    deployment = one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 3
    assert "strategy" not in deployment["spec"]  # rolling updates: no single-writer volume
    assert not find(objects, "PersistentVolumeClaim")
    pod = deployment["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["data"] == {"name": "data", "emptyDir": {}}

    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["TESK_STORE_URL"] == {
        "name": "TESK_STORE_URL",
        "valueFrom": {"secretKeyRef": {"name": "tesk-database", "key": "url"}},
    }
    assert pod["containers"][0]["args"][-2:] == ["--workers", "4"]

    ingress = one(objects, "Ingress")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [
        {"secretName": "tes-example-org-tls", "hosts": ["tes.example.org"]}
    ]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {
        "name": one(objects, "Service")["metadata"]["name"],
        "port": {"name": "http"},
    }

    pdb = one(objects, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 2
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]


def test_credentials_are_referenced_never_inlined(render: Callable[..., list[Manifest]]) -> None:
    """The chart renders no Secret; credential-like env vars come from Secrets the operator owns."""
    credential_words = ("URL", "PASSWORD", "SECRET", "TOKEN", "KEY")
    for values_files in ([], *([path] for path in SHIPPED_VALUES)):
        objects = render(values_files)
        assert not find(objects, "Secret")
        for configmap in find(objects, "ConfigMap"):
            assert "$argon2" not in str(configmap["data"]), "password hashes belong in a Secret"
        pod = one(objects, "Deployment")["spec"]["template"]["spec"]
        for container in pod["containers"]:
            for env in container.get("env", []):
                if any(word in env["name"] for word in credential_words):
                    assert "value" not in env, f"{env['name']} is inlined in the Deployment"
                    assert "secretKeyRef" in env["valueFrom"], env


def test_service_selects_the_api_pods(render: Callable[..., list[Manifest]]) -> None:
    objects = render()
    service = one(objects, "Service")
    pod_labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    container = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert service["spec"]["ports"][0]["targetPort"] == container["ports"][0]["name"]


def test_config_change_rolls_the_pods(render: Callable[..., list[Manifest]]) -> None:
    def checksum(**overrides: object) -> str:
        pod = one(render(**overrides), "Deployment")["spec"]["template"]
        return str(pod["metadata"]["annotations"]["checksum/config"])

    assert checksum() == checksum()
    assert checksum() != checksum(**{"tasks.defaultDiskGb": 5})


def test_sqlite_without_persistence_uses_an_empty_dir(
    render: Callable[..., list[Manifest]],
) -> None:
    objects = render(**{"persistence.enabled": False})
    assert not find(objects, "PersistentVolumeClaim")
    deployment = one(objects, "Deployment")
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["data"] == {"name": "data", "emptyDir": {}}


def test_oidc_release_scales_out_on_postgresql_behind_tls(
    render: Callable[..., list[Manifest]],
) -> None:
    objects = render([CHART / "ci" / "postgresql-ingress-oidc-values.yaml"])
    deployment = one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 3
    assert "strategy" not in deployment["spec"]
    assert not find(objects, "PersistentVolumeClaim")
    pod = deployment["spec"]["template"]["spec"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["TESK_STORE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "tesk-database"
    assert one(objects, "Ingress")["spec"]["tls"][0]["secretName"] == "tes-example-org-tls"
    assert one(objects, "PodDisruptionBudget")["spec"]["minAvailable"] == 2
    roles = find(objects, "Role")
    assert {role["metadata"]["namespace"] for role in roles} == {"tesk-tasks"}
