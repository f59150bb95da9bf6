"""The FOCA config the chart renders is one TESK accepts; the chart's values track tesk.config."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from annotated_types import Ge, Gt
from pydantic import BaseModel

from tesk.config import (
    DEFAULT_BLOCKED_NETWORKS,
    CustomConfig,
    KubernetesConfig,
    LimitsConfig,
    RetryConfig,
    Section,
)
from tests.deployment.chart import (
    CHART,
    NAMESPACE,
    RELEASE,
    REPO,
    SHIPPED_VALUES,
    Manifest,
    one,
    values_id,
)

VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
SCHEMA = json.loads((CHART / "values.schema.json").read_text())
# values.filer.retry names its keys by unit; tesk.config.RetryConfig by suffix.
RETRY_KEYS = {
    "attempts": "attempts",
    "initialBackoffSeconds": "initial_backoff_s",
    "maxBackoffSeconds": "max_backoff_s",
    "timeoutSeconds": "timeout_s",
}


def rendered_config(objects: list[Manifest]) -> dict[str, Any]:
    """The config file the API pod reads (found through its TESK_CONFIG variable and mounts)."""
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    config_path = Path(next(e["value"] for e in container["env"] if e["name"] == "TESK_CONFIG"))
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == str(config_path.parent))
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    configmap = one(objects, "ConfigMap", volume["configMap"]["name"])
    document = yaml.safe_load(configmap["data"][config_path.name])
    assert isinstance(document, dict)
    return document


def loaded(objects: list[Manifest]) -> CustomConfig:
    return CustomConfig.model_validate(rendered_config(objects)["custom"])


def settings(config: BaseModel, prefix: str = "") -> dict[str, Any]:
    """Every setting of a config as `section.key` -> JSON value, nested sections flattened."""
    dumped = config.model_dump(mode="json")
    found: dict[str, Any] = {}
    for name in type(config).model_fields:
        value = getattr(config, name)
        if isinstance(value, Section):
            found.update(settings(value, f"{prefix}{name}."))
        else:
            found[f"{prefix}{name}"] = dumped[name]
    return found


def camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part.title() for part in rest)


def lower_bound(model: type[BaseModel], field: str) -> tuple[str, float]:
    for constraint in model.model_fields[field].metadata:
        if isinstance(constraint, Ge):
            return "minimum", float(constraint.ge)  # type: ignore[arg-type]
        if isinstance(constraint, Gt):
            return "exclusiveMinimum", float(constraint.gt)  # type: ignore[arg-type]
    raise AssertionError(f"{model.__name__}.{field} has no lower bound")


@pytest.mark.parametrize(
    "values_files",
    [pytest.param([], id="defaults")]
    + [pytest.param([path], id=values_id(path)) for path in SHIPPED_VALUES],
)
def test_rendered_custom_section_loads_with_custom_config(
    render: Callable[..., list[Manifest]], values_files: list[Path]
) -> None:
    document = rendered_config(render(values_files))
    assert set(document) == {"custom"}
    config = CustomConfig.model_validate(document["custom"])
    assert config.backend == "kubernetes"


def test_config_follows_the_release(render: Callable[..., list[Manifest]]) -> None:
    objects = render()
    config = CustomConfig.model_validate(rendered_config(objects)["custom"])
    appversion = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    assert config.kubernetes.namespace == NAMESPACE
    assert config.kubernetes.image == f"tesk:{appversion}"
    # Two releases sharing a task namespace keep their tasks apart.
    assert config.kubernetes.instance == RELEASE
    assert config.kubernetes.storage_class is None  # the cluster's default class
    assert config.store.url is None  # SQLite in the data dir
    mounts = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    data_mount = next(m for m in mounts if m["name"] == "data")
    assert Path(data_mount["mountPath"]) == config.data_dir
    assert config.limits == LimitsConfig()
    assert config.filer.retry == RetryConfig()


def test_config_carries_the_operator_choices(render: Callable[..., list[Manifest]]) -> None:
    objects = render([CHART / "ci" / "postgresql-ingress-values.yaml"])
    config = CustomConfig.model_validate(rendered_config(objects)["custom"])
    k8s = config.kubernetes
    assert k8s.namespace == "tesk-tasks"
    assert k8s.image == "registry.example.org/tesk-taskmaster:0.1.0-debug"
    assert k8s.image_pull_policy == "IfNotPresent"
    assert k8s.storage_class == "fast-ssd"
    assert k8s.default_disk_gb == 10
    assert k8s.pending_timeout_s == 900
    assert k8s.ttl_seconds_after_finished == 600
    assert k8s.filer_env_secret == "tesk-filer-s3"
    assert k8s.filer_netrc_secret == "tesk-filer-netrc"
    accounts = {sa["metadata"]["name"]: sa for sa in objects if sa["kind"] == "ServiceAccount"}
    assert accounts[k8s.taskmaster_service_account]["metadata"]["namespace"] == "tesk-tasks"
    assert k8s.executor_service_account is not None
    assert accounts[k8s.executor_service_account]["metadata"]["namespace"] == "tesk-tasks"
    assert config.filer.ftp is False
    assert config.filer.s3 is True
    assert config.service_info.name == "Example TES"
    assert config.service_info.environment == "prod"
    assert config.service_info.documentationUrl is None  # "" in values: left to TESK's default
    assert config.store.url is None  # the URL comes from the Secret, through TESK_STORE_URL


def test_fractional_disk_size_survives_rendering(render: Callable[..., list[Manifest]]) -> None:
    objects = render(**{"tasks.defaultDiskGb": 0.5})
    config = CustomConfig.model_validate(rendered_config(objects)["custom"])
    assert config.kubernetes.default_disk_gb == 0.5


def test_limits_values_mirror_limits_config() -> None:
    """Every LimitsConfig field has a value key with TESK's default and the same lower bound."""
    schema = SCHEMA["properties"]["limits"]["properties"]
    expected = {camel(field) for field in LimitsConfig.model_fields}
    assert set(VALUES["limits"]) == expected
    assert set(schema) == expected
    for field, info in LimitsConfig.model_fields.items():
        key = camel(field)
        assert VALUES["limits"][key] == info.default, key
        keyword, bound = lower_bound(LimitsConfig, field)
        assert schema[key].get(keyword) == bound, (
            f"{key}: schema {schema[key]} vs {keyword} {bound}"
        )


def test_retry_values_mirror_retry_config() -> None:
    schema = SCHEMA["properties"]["filer"]["properties"]["retry"]["properties"]
    assert set(RETRY_KEYS.values()) == set(RetryConfig.model_fields)
    assert set(VALUES["filer"]["retry"]) == set(RETRY_KEYS) == set(schema)
    for key, field in RETRY_KEYS.items():
        assert VALUES["filer"]["retry"][key] == RetryConfig.model_fields[field].default, key
        keyword, bound = lower_bound(RetryConfig, field)
        assert schema[key].get(keyword) == bound, key


def test_task_bounds_match_kubernetes_config() -> None:
    schema = SCHEMA["properties"]["tasks"]["properties"]
    for key, field in {
        "defaultDiskGb": "default_disk_gb",
        "volumeFsGroup": "volume_fs_group",
        "pendingTimeoutSeconds": "pending_timeout_s",
        "ttlSecondsAfterFinished": "ttl_seconds_after_finished",
        "resyncIntervalSeconds": "resync_interval_s",
    }.items():
        keyword, bound = lower_bound(KubernetesConfig, field)
        assert schema[key].get(keyword) == bound, key
        assert VALUES["tasks"][key] == KubernetesConfig.model_fields[field].default, key


def test_chart_versions_follow_pyproject() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == project, "set Chart.yaml appVersion to pyproject's version"
    assert chart["version"] == project, "set Chart.yaml version to pyproject's version"
    assert re.fullmatch(r"\d+\.\d+\.\d+([-+].+)?", chart["version"])


# Settings the chart takes from the release rather than from TESK's defaults.
FROM_THE_RELEASE = {
    "data_dir",
    "backend",
    "kubernetes.namespace",
    "kubernetes.instance",
    "kubernetes.image",
    "kubernetes.taskmaster_service_account",
    "kubernetes.executor_service_account",
}
# Settings an operator cannot reach through values, and why.
NOT_OFFERED = {
    "kubernetes.kubeconfig": "the API uses its ServiceAccount's in-cluster credentials",
    "store.url": "the URL comes from database.existingSecret through TESK_STORE_URL",
    "store.sqlite_synchronous": "TESK's default: commits survive a node's power loss",
    "local.runtime": "the local backend is not used on Kubernetes",
    "local.max_concurrent_tasks": "the local backend is not used on Kubernetes",
    "local.network": "the local backend is not used on Kubernetes",
    "local.executor_user": "the local backend is not used on Kubernetes",
    "local.containers_conf": "the local backend is not used on Kubernetes",
    "service_info.version": "always the installed TESK version",
    "service_info.storage": "derived from the filer settings",
    "kubernetes.run_as_user": "TESK's own pods run as the TESK image's user (USER 10001)",
    "kubernetes.run_as_group": "TESK's own pods run as the TESK image's group (USER 10001)",
}
# One non-default value for every setting the chart offers, and what TESK must read from it.
EVERY_VALUE: dict[str, object] = {
    "database.poolSize": 3,
    "tasks.instance": "tesk-blue",
    "tasks.storageClass": "fast-ssd",
    "tasks.volumeAccessMode": "ReadWriteOncePod",
    "tasks.defaultDiskGb": 2.5,
    "tasks.volumeFsGroup": 2000,
    "tasks.pendingTimeoutSeconds": 30,
    "tasks.cancelTimeoutSeconds": 9,
    "tasks.ttlSecondsAfterFinished": 0,
    "tasks.resyncIntervalSeconds": 7.5,
    "tasks.maxRunningTasks": 40,
    "taskmaster.image.repository": "registry.example.org/tesk-tm",
    "taskmaster.image.tag": "dev",
    "taskmaster.image.pullPolicy": "Always",
    "taskmaster.imagePullSecrets": [{"name": "tm-pull"}],
    "taskmaster.cpu": "250m",
    "taskmaster.memory": "1Gi",
    "executors.shell": "/bin/bash",
    "executors.defaultCpuCores": 0.5,
    "executors.defaultRamGb": 1.5,
    "executors.nodeSelector": {"pool": "tasks"},
    "executors.tolerations": [{"key": "tasks", "operator": "Exists"}],
    "executors.gpuResource": "amd.com/gpu",
    "executors.zoneLabel": "example.org/zone",
    "executors.allowedImagePullSecrets": ["task-pull"],
    "executors.runAsUser": 2001,
    "executors.runAsGroup": 2002,
    "executors.preemptible.nodeSelector": {"spot": "true"},
    "executors.preemptible.tolerations": [{"key": "spot", "operator": "Exists"}],
    "filer.http": False,
    "filer.ftp": False,
    "filer.s3": False,
    "filer.envSecret": "filer-env",
    "filer.netrcSecret": "filer-netrc",
    "filer.fileRoots": ["/mnt/data"],
    "filer.blockedNetworks": ["10.0.0.0/8"],
    "filer.chunkBytes": 65536,
    "filer.retry.attempts": 2,
    "filer.retry.initialBackoffSeconds": 0.1,
    "filer.retry.maxBackoffSeconds": 2,
    "filer.retry.timeoutSeconds": 5,
    "auth.mode": "oidc",
    "auth.adminGroup": "tes-admins",
    "auth.identityInMetadata": True,
    "auth.oidc.issuer": "https://login.example.org/realms/r",
    "auth.oidc.audience": ["tesk", "tes"],
    "auth.oidc.identityClaim": "preferred_username",
    "auth.oidc.groupsClaim": "realm_access.roles",
    "auth.oidc.algorithms": ["ES256"],
    "auth.oidc.requireAccessTokenType": True,
    "auth.oidc.cacheTtlSeconds": 60,
    "auth.oidc.timeoutSeconds": 3,
    **{
        f"limits.{camel(name)}": (info.default or 0) + 1
        for name, info in LimitsConfig.model_fields.items()
    },
    "quotas.maxActiveTasksPerOwner": 5,
    "quotas.maxQueuedTasks": 1000,
    "quotas.groups": {"lab": 20},
    "quotas.users": {"alice": 50},
    "quotas.adminsExempt": False,
    "quotas.retryAfterSeconds": 60,
    "retries.maxAttempts": 5,
    "retries.systemErrors": True,
    "streams.maxPerWorker": 64,
    "streams.pollIntervalSeconds": 1.5,
    "streams.keepaliveSeconds": 30,
    "streams.retryAfterSeconds": 9,
    "usage.prices.coreHourUsd": 0.04,
    "usage.prices.ramGbHourUsd": 0.005,
    "usage.prices.diskGbHourUsd": 0.0001,
    "serviceInfo.id": "org.example.tes",
    "serviceInfo.name": "Example",
    "serviceInfo.description": "d",
    "serviceInfo.organization": {"name": "Example", "url": "https://example.org"},
    "serviceInfo.contactUrl": "mailto:a@example.org",
    "serviceInfo.documentationUrl": "https://example.org/tes",
    "serviceInfo.environment": "test",
    "logging.format": "json",
    "logging.requests": False,
    "metrics.enabled": False,
}
EVERY_SETTING: dict[str, object] = {
    "store.pool_size": 3,
    "kubernetes.instance": "tesk-blue",
    "kubernetes.storage_class": "fast-ssd",
    "kubernetes.volume_access_mode": "ReadWriteOncePod",
    "kubernetes.default_disk_gb": 2.5,
    "kubernetes.volume_fs_group": 2000,
    "kubernetes.pending_timeout_s": 30,
    "kubernetes.cancel_timeout_s": 9,
    "kubernetes.ttl_seconds_after_finished": 0,
    "kubernetes.resync_interval_s": 7.5,
    "kubernetes.max_running_tasks": 40,
    "kubernetes.image": "registry.example.org/tesk-tm:dev",
    "kubernetes.image_pull_policy": "Always",
    "kubernetes.image_pull_secrets": ["tm-pull"],
    "kubernetes.taskmaster_cpu": "250m",
    "kubernetes.taskmaster_memory": "1Gi",
    "kubernetes.executor.shell": "/bin/bash",
    "kubernetes.executor.default_cpu_cores": 0.5,
    "kubernetes.executor.default_ram_gb": 1.5,
    "kubernetes.executor.node_selector": {"pool": "tasks"},
    "kubernetes.executor.tolerations": [{"key": "tasks", "operator": "Exists"}],
    "kubernetes.executor.gpu_resource": "amd.com/gpu",
    "kubernetes.executor.zone_label": "example.org/zone",
    "kubernetes.executor.allowed_image_pull_secrets": ["task-pull"],
    "kubernetes.executor.run_as_user": 2001,
    "kubernetes.executor.run_as_group": 2002,
    "kubernetes.preemptible.node_selector": {"spot": "true"},
    "kubernetes.preemptible.tolerations": [{"key": "spot", "operator": "Exists"}],
    "kubernetes.filer_env_secret": "filer-env",
    "kubernetes.filer_netrc_secret": "filer-netrc",
    "kubernetes.file_roots_host_path": True,
    "filer.http": False,
    "filer.ftp": False,
    "filer.s3": False,
    "filer.file_roots": ["/mnt/data"],
    "filer.blocked_networks": ["10.0.0.0/8"],
    "filer.chunk_bytes": 65536,
    "filer.retry.attempts": 2,
    "filer.retry.initial_backoff_s": 0.1,
    "filer.retry.max_backoff_s": 2,
    "filer.retry.timeout_s": 5,
    "auth.mode": "oidc",
    "auth.admin_group": "tes-admins",
    "auth.identity_in_metadata": True,
    "auth.oidc.issuer": "https://login.example.org/realms/r",
    "auth.oidc.audience": ["tesk", "tes"],
    "auth.oidc.identity_claim": "preferred_username",
    "auth.oidc.groups_claim": "realm_access.roles",
    "auth.oidc.algorithms": ["ES256"],
    "auth.oidc.require_access_token_type": True,
    "auth.oidc.cache_ttl_s": 60,
    "auth.oidc.timeout_s": 3,
    **{
        f"limits.{name}": (info.default or 0) + 1
        for name, info in LimitsConfig.model_fields.items()
    },
    "quotas.max_active_tasks_per_owner": 5,
    "quotas.max_queued_tasks": 1000,
    "quotas.groups": {"lab": 20},
    "quotas.users": {"alice": 50},
    "quotas.admins_exempt": False,
    "quotas.retry_after_s": 60,
    "retries.max_attempts": 5,
    "retries.system_errors": True,
    "streams.max_per_worker": 64,
    "streams.poll_interval_s": 1.5,
    "streams.keepalive_s": 30,
    "streams.retry_after_s": 9,
    "usage.prices.core_hour_usd": 0.04,
    "usage.prices.ram_gb_hour_usd": 0.005,
    "usage.prices.disk_gb_hour_usd": 0.0001,
    "service_info.id": "org.example.tes",
    "service_info.name": "Example",
    "service_info.description": "d",
    "service_info.organization.name": "Example",
    "service_info.organization.url": "https://example.org",
    "service_info.contactUrl": "mailto:a@example.org",
    "service_info.documentationUrl": "https://example.org/tes",
    "service_info.environment": "test",
    "logging.format": "json",
    "logging.requests": False,
    "metrics.enabled": False,
}


def test_defaults_render_the_defaults_of_tesk_config(render: Callable[..., list[Manifest]]) -> None:
    """Whatever the release does not decide, the chart leaves as TESK's defaults."""
    rendered = settings(loaded(render()))
    defaults = settings(CustomConfig())
    differing = {
        key: (rendered[key], defaults[key])
        for key in defaults
        if key not in FROM_THE_RELEASE and rendered[key] != defaults[key]
    }
    assert not differing, (
        f"values.yaml defaults differ from tesk.config (rendered, TESK): {differing}"
    )


def test_every_value_reaches_its_setting(render: Callable[..., list[Manifest]]) -> None:
    rendered = settings(loaded(render(**EVERY_VALUE)))
    wrong = {
        key: (rendered[key], wanted)
        for key, wanted in EVERY_SETTING.items()
        if rendered[key] != wanted
    }
    assert not wrong, f"(rendered, wanted): {wrong}"


def test_every_setting_is_offered_or_left_out_for_a_reason() -> None:
    """A new tesk.config setting fails this until values.yaml offers it or NOT_OFFERED says why."""
    basic_only = {"auth.users_file"}  # test_basic_auth_mounts_the_users_secret_read_only
    accounted = set(EVERY_SETTING) | FROM_THE_RELEASE | set(NOT_OFFERED) | basic_only
    missing = sorted(set(settings(CustomConfig())) - accounted)
    assert not missing, f"settings the chart does not offer: {missing}"


def test_taskmaster_pulls_with_the_api_image_secrets_unless_told_otherwise(
    render: Callable[..., list[Manifest]],
) -> None:
    inherited = loaded(render(imagePullSecrets=[{"name": "registry"}]))
    assert inherited.kubernetes.image_pull_secrets == ["registry"]
    assert loaded(render()).kubernetes.image_pull_secrets == []


def test_volume_fs_group_can_be_unset(render: Callable[..., list[Manifest]]) -> None:
    config = loaded(render(**{"tasks.volumeFsGroup": None}))
    assert config.kubernetes.volume_fs_group is None


def test_blocked_networks_default_to_those_of_tesk_config(
    render: Callable[..., list[Manifest]],
) -> None:
    assert VALUES["filer"]["blockedNetworks"] == list(DEFAULT_BLOCKED_NETWORKS)
    assert loaded(render(**{"filer.blockedNetworks": []})).filer.blocked_networks == []


def test_basic_auth_mounts_the_users_secret_read_only(
    render: Callable[..., list[Manifest]],
) -> None:
    objects = render([CHART / "ci" / "basic-auth-values.yaml"])
    auth = loaded(objects).auth
    assert auth.mode == "basic"
    assert auth.admin_group == "tesk-admin"
    assert auth.users_file is not None
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    (mount,) = [
        m
        for m in pod["containers"][0]["volumeMounts"]
        if Path(m["mountPath"]) == auth.users_file.parent
    ]
    assert mount["readOnly"] is True
    # The whole Secret as a directory (no subPath): the kubelet's updates reach the file, and
    # TESK re-reads it without a restart.
    assert "subPath" not in mount
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert volume["secret"]["secretName"] == "tesk-users"
    assert volume["secret"]["items"] == [{"key": "users", "path": auth.users_file.name}]
    # Readable through the pod's group only, which the API's user is in.
    assert volume["secret"]["defaultMode"] == 0o440
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"]


def test_oidc_settings_and_no_users_volume(render: Callable[..., list[Manifest]]) -> None:
    objects = render([CHART / "ci" / "postgresql-ingress-oidc-values.yaml"])
    auth = loaded(objects).auth
    assert auth.mode == "oidc"
    assert auth.oidc.issuer == "https://login.example.org/realms/science"
    assert auth.oidc.audience == ["tesk"]
    assert auth.oidc.groups_claim == "realm_access.roles"
    assert auth.admin_group == "tesk-admin"
    assert auth.identity_in_metadata is True
    assert auth.users_file is None
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert not [v for v in pod["volumes"] if "secret" in v]
    # The private CA of the issuer reaches the API container.
    mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["/etc/site-ca"] == "site-ca"
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["REQUESTS_CA_BUNDLE"].startswith("/etc/site-ca/")
