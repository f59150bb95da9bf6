"""A container's own variables: its env and envFrom, resolved against the API objects."""

from __future__ import annotations

import base64
import os
from typing import Any

from .expansion import expand
from .meta import Obj, dig
from .quantity import parse_quantity
from .resources import BY_PLURAL
from .store import Store


class ConfigError(Exception):
    """A ConfigMap, Secret or key the container needs is missing (CreateContainerConfigError)."""


class PodEnvironment:
    def __init__(self, store: Store, pod: Obj) -> None:
        self.store = store
        self.pod = pod
        self.namespace: str = pod["metadata"]["namespace"]

    def variables(self, container: Obj) -> dict[str, str]:
        """The variables the container defines (env and envFrom), which `$(VAR)` can use."""
        defined: dict[str, str] = {}
        for source in container.get("envFrom") or []:
            prefix = source.get("prefix", "")
            if source.get("configMapRef"):
                ref = source["configMapRef"]
                data = self._config_data("configmaps", ref.get("name", ""), ref.get("optional"))
            elif source.get("secretRef"):
                ref = source["secretRef"]
                data = self._config_data("secrets", ref.get("name", ""), ref.get("optional"))
            else:
                continue
            for key, text in (data or {}).items():
                defined[prefix + key] = text
        for item in container.get("env") or []:
            if item.get("valueFrom"):
                value = self._value_from(item["valueFrom"], container)
                if value is None:
                    continue
            else:
                value = expand(str(item.get("value", "")), defined)
            defined[item["name"]] = value
        return defined

    def _value_from(self, source: Obj, container: Obj) -> str | None:
        if "fieldRef" in source:
            path = source["fieldRef"].get("fieldPath", "")
            return field_value(self.pod, path)
        if "configMapKeyRef" in source or "secretKeyRef" in source:
            plural = "configmaps" if "configMapKeyRef" in source else "secrets"
            ref = source.get("configMapKeyRef") or source.get("secretKeyRef") or {}
            data = self._config_data(plural, ref.get("name", ""), ref.get("optional"))
            if data is None:
                return None
            if ref.get("key") not in data:
                if ref.get("optional"):
                    return None
                kind = "configmap" if plural == "configmaps" else "secret"
                raise ConfigError(
                    f"couldn't find key {ref.get('key')} in {kind.capitalize()} "
                    f"{self.namespace}/{ref.get('name')}"
                )
            return data[ref["key"]]
        if "resourceFieldRef" in source:
            ref = source["resourceFieldRef"]
            target = container
            if ref.get("containerName"):
                target = next(
                    (
                        c
                        for c in self.pod["spec"]["containers"]
                        if c["name"] == ref["containerName"]
                    ),
                    container,
                )
            section, _, resource = ref.get("resource", "").partition(".")
            value = dig(target, "resources", section, resource)
            if value is None:
                return "0" if section == "requests" else str(_node_capacity(resource))
            divisor = parse_quantity(ref.get("divisor", "1"))
            amount = parse_quantity(value) / divisor
            return str(int(-(-amount // 1)))
        return None

    def _config_data(self, plural: str, name: str, optional: Any) -> dict[str, str] | None:
        obj = self.store.try_get(BY_PLURAL[plural], self.namespace, name)
        if obj is None:
            if optional:
                return None
            kind = "configmap" if plural == "configmaps" else "secret"
            raise ConfigError(f'{kind} "{name}" not found')
        if plural == "secrets":
            return {
                k: base64.b64decode(v).decode(errors="replace")
                for k, v in (obj.get("data") or {}).items()
            }
        return dict(obj.get("data") or {})


def field_value(pod: Obj, path: str) -> str | None:
    meta = pod["metadata"]
    if path.startswith("metadata.labels['") and path.endswith("']"):
        return str((meta.get("labels") or {}).get(path[len("metadata.labels['") : -2], ""))
    if path.startswith("metadata.annotations['") and path.endswith("']"):
        return str(
            (meta.get("annotations") or {}).get(path[len("metadata.annotations['") : -2], "")
        )
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": dig(pod, "spec", "nodeName"),
        "spec.serviceAccountName": dig(pod, "spec", "serviceAccountName"),
        "status.hostIP": "127.0.0.1",
        "status.hostIPs": "127.0.0.1",
        "status.podIP": "127.0.0.1",
        "status.podIPs": "127.0.0.1",
    }
    if path == "metadata.labels":
        return "\n".join(f'{k}="{v}"' for k, v in sorted((meta.get("labels") or {}).items()))
    if path == "metadata.annotations":
        return "\n".join(f'{k}="{v}"' for k, v in sorted((meta.get("annotations") or {}).items()))
    value = simple.get(path)
    return str(value) if value is not None else ""


def _node_capacity(resource: str) -> int:
    if resource == "cpu":
        return os.cpu_count() or 1
    if resource == "memory":
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return 0
