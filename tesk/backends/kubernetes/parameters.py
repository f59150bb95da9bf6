"""`resources.backend_parameters` of the Kubernetes backend: parsed once, checked at create.

Keys (lower case; TES keys are case-insensitive):

- `node_selector`: `key=value[,key=value...]` — executor pods run only on nodes with these labels.
- `tolerations`: `key[=value][:Effect][,...]` — executor pods tolerate these taints (no value:
  operator Exists; no effect: every effect).
- `gpu_count`: a whole number >= 1 — executor pods request and are limited to that many GPUs
  (the extended resource `kubernetes.executor.gpu_resource`, default `nvidia.com/gpu`).
- `max_runtime_seconds`: a whole number >= 1 — each executor pod's activeDeadlineSeconds; an
  executor that runs longer is stopped and the task ends EXECUTOR_ERROR.
- `image_pull_secret`: the name of a Secret of the task namespace used to pull executor images
  (limited to `kubernetes.executor.allowed_image_pull_secrets` when that list is set).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tesk.tes.limits import MAX_RUNTIME, parse_max_runtime, whole_number

NODE_SELECTOR = "node_selector"
TOLERATIONS = "tolerations"
GPU_COUNT = "gpu_count"
IMAGE_PULL_SECRET = "image_pull_secret"  # noqa: S105 (a parameter name, no secret)

SUPPORTED: tuple[str, ...] = (NODE_SELECTOR, TOLERATIONS, GPU_COUNT, MAX_RUNTIME, IMAGE_PULL_SECRET)

_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")


@dataclass(frozen=True)
class Placement:
    """What a task's backend_parameters change in its executor pods."""

    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    gpu_count: int = 0
    max_runtime_s: int | None = None
    image_pull_secret: str | None = None


def parse(
    parameters: Mapping[str, str] | None, allowed_pull_secrets: Sequence[str] = ()
) -> Placement:
    """The placement `parameters` ask for. Raises ValueError saying which key is wrong and why."""
    params = {key.lower(): value for key, value in (parameters or {}).items()}
    return Placement(
        node_selector=_node_selector(params[NODE_SELECTOR]) if NODE_SELECTOR in params else {},
        tolerations=_tolerations(params[TOLERATIONS]) if TOLERATIONS in params else [],
        gpu_count=whole_number(GPU_COUNT, params[GPU_COUNT]) if GPU_COUNT in params else 0,
        max_runtime_s=parse_max_runtime(params[MAX_RUNTIME]) if MAX_RUNTIME in params else None,
        image_pull_secret=(
            _pull_secret(params[IMAGE_PULL_SECRET], allowed_pull_secrets)
            if IMAGE_PULL_SECRET in params
            else None
        ),
    )


def _items(key: str, value: str) -> list[str]:
    parts = [part.strip() for part in value.split(",")]
    if not value.strip() or any(not part for part in parts):
        raise ValueError(f"{key}: empty entry in {value!r} (use comma-separated entries)")
    return parts


def _label_key(key: str, name: str) -> None:
    prefix, _, base = name.rpartition("/")
    if (
        prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix))
    ) or not _LABEL_NAME.match(base):
        raise ValueError(f"{key}: {name!r} is not a valid Kubernetes label key")


def _node_selector(value: str) -> dict[str, str]:
    selector: dict[str, str] = {}
    for item in _items(NODE_SELECTOR, value):
        name, sep, label_value = item.partition("=")
        if not sep:
            raise ValueError(f"{NODE_SELECTOR}: {item!r} is not key=value")
        name, label_value = name.strip(), label_value.strip()
        _label_key(NODE_SELECTOR, name)
        if not _LABEL_VALUE.match(label_value):
            raise ValueError(f"{NODE_SELECTOR}: {label_value!r} is not a valid label value")
        selector[name] = label_value
    return selector


def _tolerations(value: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for item in _items(TOLERATIONS, value):
        rest, colon, effect = item.rpartition(":") if ":" in item else (item, "", "")
        toleration: dict[str, Any] = {}
        if colon:
            if effect not in _EFFECTS:
                raise ValueError(
                    f"{TOLERATIONS}: effect {effect!r} in {item!r} is not one of "
                    f"{', '.join(_EFFECTS)}"
                )
            toleration["effect"] = effect
        name, equals, taint_value = rest.partition("=")
        _label_key(TOLERATIONS, name)
        toleration["key"] = name
        if equals:
            if not _LABEL_VALUE.match(taint_value):
                raise ValueError(f"{TOLERATIONS}: {taint_value!r} is not a valid taint value")
            toleration.update(operator="Equal", value=taint_value)
        else:
            toleration["operator"] = "Exists"
        found.append(toleration)
    return found


def _pull_secret(value: str, allowed: Sequence[str]) -> str:
    name = value.strip()
    if len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        raise ValueError(f"{IMAGE_PULL_SECRET}: {value!r} is not a valid Secret name")
    if allowed and name not in allowed:
        raise ValueError(
            f"{IMAGE_PULL_SECRET}: {name!r} is not one of the Secrets this service allows "
            f"({', '.join(allowed)})"
        )
    return name
