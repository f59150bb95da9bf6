"""Discovery and health endpoints: what clients ask before they use the API."""

from __future__ import annotations

from .meta import Obj
from .resources import RESOURCES, VERBS, groups

KUBERNETES_VERSION = {"major": "1", "minor": "33", "gitVersion": "v1.33.0-fakecluster"}


def discovery(path: str) -> Obj | None:
    """The answer for a discovery or health path, None for any other path."""
    if path in ("/healthz", "/readyz", "/livez"):
        return {"status": "ok"}
    if path == "/version":
        return {
            **KUBERNETES_VERSION,
            "gitCommit": "0" * 40,
            "gitTreeState": "clean",
            "buildDate": "2026-01-01T00:00:00Z",
            "goVersion": "go1.24.0",
            "compiler": "gc",
            "platform": "linux/amd64",
        }
    if path == "/api":
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}
            ],
        }
    if path == "/apis":
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [
                {
                    "name": group,
                    "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in versions],
                    "preferredVersion": {
                        "groupVersion": f"{group}/{versions[0]}",
                        "version": versions[0],
                    },
                }
                for group, versions in groups().items()
            ],
        }
    parts = path.strip("/").split("/")
    if parts[:1] == ["api"] and len(parts) == 2:
        return resource_list("", parts[1])
    if parts[:1] == ["apis"] and len(parts) == 3:
        return resource_list(parts[1], parts[2])
    if parts[:1] == ["apis"] and len(parts) == 2 and parts[1] in groups():
        versions = groups()[parts[1]]
        return {
            "kind": "APIGroup",
            "apiVersion": "v1",
            "name": parts[1],
            "versions": [{"groupVersion": f"{parts[1]}/{v}", "version": v} for v in versions],
            "preferredVersion": {
                "groupVersion": f"{parts[1]}/{versions[0]}",
                "version": versions[0],
            },
        }
    return None


def resource_list(group: str, version: str) -> Obj | None:
    served = [r for r in RESOURCES if r.group == group and r.version == version]
    if not served:
        return None
    entries: list[Obj] = []
    for r in served:
        entries.append(
            {
                "name": r.plural,
                "singularName": r.singular,
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": VERBS,
                "shortNames": list(r.short_names),
            }
        )
        if r.has_status:
            entries.append(
                {
                    "name": f"{r.plural}/status",
                    "singularName": "",
                    "namespaced": r.namespaced,
                    "kind": r.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
        for sub in r.extra_subresources:
            entries.append(
                {
                    "name": f"{r.plural}/{sub}",
                    "singularName": "",
                    "namespaced": r.namespaced,
                    "kind": r.kind,
                    "verbs": ["get"],
                }
            )
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": entries,
    }
