"""The API resources the fake serves, with the facts discovery and the registry need."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Resource:
    plural: str
    kind: str
    group: str  # "" for the core group
    version: str
    namespaced: bool
    singular: str
    has_status: bool = False  # served with a /status subresource; main updates keep status
    short_names: tuple[str, ...] = ()
    # How DELETE cascades when the request names no policy (batch/v1 Jobs orphan their pods).
    default_propagation: str = "Background"
    extra_subresources: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"


VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]

RESOURCES: tuple[Resource, ...] = (
    Resource("namespaces", "Namespace", "", "v1", False, "namespace", True, ("ns",)),
    Resource("nodes", "Node", "", "v1", False, "node", True, ("no",)),
    Resource("pods", "Pod", "", "v1", True, "pod", True, ("po",), extra_subresources=("log",)),
    Resource("configmaps", "ConfigMap", "", "v1", True, "configmap", False, ("cm",)),
    Resource("secrets", "Secret", "", "v1", True, "secret"),
    Resource("serviceaccounts", "ServiceAccount", "", "v1", True, "serviceaccount", False, ("sa",)),
    Resource(
        "persistentvolumeclaims",
        "PersistentVolumeClaim",
        "",
        "v1",
        True,
        "persistentvolumeclaim",
        True,
        ("pvc",),
    ),
    Resource("events", "Event", "", "v1", True, "event", False, ("ev",)),
    Resource("jobs", "Job", "batch", "v1", True, "job", True, default_propagation="Orphan"),
    Resource(
        "storageclasses",
        "StorageClass",
        "storage.k8s.io",
        "v1",
        False,
        "storageclass",
        False,
        ("sc",),
    ),
    Resource("roles", "Role", "rbac.authorization.k8s.io", "v1", True, "role"),
    Resource("rolebindings", "RoleBinding", "rbac.authorization.k8s.io", "v1", True, "rolebinding"),
    Resource(
        "clusterroles", "ClusterRole", "rbac.authorization.k8s.io", "v1", False, "clusterrole"
    ),
    Resource(
        "clusterrolebindings",
        "ClusterRoleBinding",
        "rbac.authorization.k8s.io",
        "v1",
        False,
        "clusterrolebinding",
    ),
)

BY_PLURAL: dict[str, Resource] = {r.plural: r for r in RESOURCES}
BY_KIND: dict[str, Resource] = {r.kind: r for r in RESOURCES}


def lookup(group: str, version: str, plural: str) -> Resource | None:
    resource = BY_PLURAL.get(plural)
    if resource is None or resource.group != group or resource.version != version:
        return None
    return resource


def groups() -> dict[str, list[str]]:
    """API group -> versions, for discovery (the core group is served under /api)."""
    found: dict[str, list[str]] = {}
    for resource in RESOURCES:
        if resource.group and resource.version not in found.setdefault(resource.group, []):
            found[resource.group].append(resource.version)
    return found
