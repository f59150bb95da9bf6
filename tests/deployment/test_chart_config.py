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

from tesk.config import CustomConfig, KubernetesConfig, LimitsConfig, RetryConfig
from tests.deployment.chart import (
    CHART,
    NAMESPACE,
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
        "pendingTimeoutSeconds": "pending_timeout_s",
        "ttlSecondsAfterFinished": "ttl_seconds_after_finished",
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
