"""Tests' view of the real test cluster (tests/k8s/cluster): one fresh namespace per test, with
the chart's taskmaster Role and the accounts TESK uses, enforcing Pod Security `restricted`.

The cluster itself is started once by `make k8s-up` (`make test` does it); a test that finds it
down fails and says so.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests.k8s.cluster import Cluster, ClusterError
from tests.k8s.cluster.components import audit_log

Obj = dict[str, Any]
T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
VALUES = REPO / "deployment" / "charts" / "tesk" / "values.yaml"
TASKMASTER_SA = "tesk-taskmaster"
EXECUTOR_SA = "tesk-executor"
TESK_IMAGE = "localhost/tesk:dev"
EXECUTOR_IMAGE = "busybox:1.36"

# kind (plural, as the API names it) -> (API path prefix, namespaced)
KINDS: dict[str, tuple[str, bool]] = {
    "pods": ("/api/v1", True),
    "configmaps": ("/api/v1", True),
    "persistentvolumeclaims": ("/api/v1", True),
    "serviceaccounts": ("/api/v1", True),
    "secrets": ("/api/v1", True),
    "resourcequotas": ("/api/v1", True),
    "limitranges": ("/api/v1", True),
    "events": ("/api/v1", True),
    "services": ("/api/v1", True),
    "jobs": ("/apis/batch/v1", True),
    "roles": ("/apis/rbac.authorization.k8s.io/v1", True),
    "rolebindings": ("/apis/rbac.authorization.k8s.io/v1", True),
    "persistentvolumes": ("/api/v1", False),
    "nodes": ("/api/v1", False),
    "namespaces": ("/api/v1", False),
    "storageclasses": ("/apis/storage.k8s.io/v1", False),
}
KIND_OF = {
    "Pod": "pods",
    "ConfigMap": "configmaps",
    "PersistentVolumeClaim": "persistentvolumeclaims",
    "ServiceAccount": "serviceaccounts",
    "Secret": "secrets",
    "ResourceQuota": "resourcequotas",
    "LimitRange": "limitranges",
    "Service": "services",
    "Job": "jobs",
    "Role": "roles",
    "RoleBinding": "rolebindings",
    "PersistentVolume": "persistentvolumes",
    "Namespace": "namespaces",
    "StorageClass": "storageclasses",
}


class TestCluster:
    """The real cluster, seen through one namespace of its own."""

    __test__ = False

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.kubeconfig_path = str(cluster.layout.kubeconfig)
        self.api = config.new_client_from_config(config_file=self.kubeconfig_path)
        self.core = client.CoreV1Api(self.api)
        self.batch = client.BatchV1Api(self.api)

    # --- objects -----------------------------------------------------------------------------

    def _path(self, kind: str, namespace: str | None, name: str | None = None) -> str:
        prefix, namespaced = KINDS[kind]
        path = prefix
        if namespaced:
            path += f"/namespaces/{namespace or self.namespace}"
        path += f"/{kind}"
        if name:
            path += f"/{name}"
        return path

    def _call(self, method: str, path: str, body: Obj | None = None, **query: Any) -> Obj:
        if query:
            path += "?" + urllib.parse.urlencode(query)
        result = self.cluster.request(method, path, body)
        return result if isinstance(result, dict) else {}

    def apply(self, obj: Obj) -> Obj:
        """Creates the object (in this namespace unless it names another)."""
        kind = KIND_OF[obj["kind"]]
        namespace = (obj.get("metadata") or {}).get("namespace")
        return self._call("POST", self._path(kind, namespace), obj)

    def get(self, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        try:
            return self._call("GET", self._path(kind, namespace, name))
        except ClusterError as error:
            if " 404 " in str(error):
                return None
            raise

    def objects(self, kind: str, namespace: str | None = None, **query: Any) -> list[Obj]:
        items = self._call("GET", self._path(kind, namespace), **query).get("items") or []
        return list(items)

    def delete(self, kind: str, name: str, namespace: str | None = None, **query: Any) -> None:
        try:
            self._call("DELETE", self._path(kind, namespace, name), **query)
        except ClusterError as error:
            if " 404 " not in str(error):
                raise

    def logs(self, pod: str, container: str | None = None, namespace: str | None = None) -> str:
        text: str = self.core.read_namespaced_pod_log(
            pod, namespace or self.namespace, container=container
        )
        return text

    def evict(self, pod: str, namespace: str | None = None) -> None:
        """Evicts a pod through the Eviction API, as `kubectl drain` does."""
        namespace = namespace or self.namespace
        self._call(
            "POST",
            f"/api/v1/namespaces/{namespace}/pods/{pod}/eviction",
            {
                "apiVersion": "policy/v1",
                "kind": "Eviction",
                "metadata": {"name": pod, "namespace": namespace},
            },
        )

    def wait_for(
        self, predicate: Callable[[], T], timeout: float = 60.0, interval: float = 0.25
    ) -> T:
        end = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > end:
                raise AssertionError(f"not true within {timeout} s: {predicate}")
            time.sleep(interval)

    def audit(self, user: str) -> list[Obj]:
        """Every request this user made, from the API server's audit log."""
        found = []
        with audit_log(self.cluster.layout).open() as log:
            for line in log:
                event = json.loads(line)
                if (event.get("user") or {}).get("username") == user:
                    found.append(event)
        return found

    # --- the namespace -----------------------------------------------------------------------

    def prepare(self, *, pod_security: str = "restricted") -> None:
        self.core.create_namespace(
            {
                "metadata": {
                    "name": self.namespace,
                    "labels": {
                        "pod-security.kubernetes.io/enforce": pod_security,
                        "pod-security.kubernetes.io/enforce-version": "latest",
                    },
                }
            }
        )
        for account in (TASKMASTER_SA, EXECUTOR_SA):
            self.core.create_namespaced_service_account(
                self.namespace, {"metadata": {"name": account}}
            )
        rules = yaml.safe_load(VALUES.read_text())["rbac"]["taskmasterRules"]
        self.apply(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": TASKMASTER_SA},
                "rules": rules,
            }
        )
        self.apply(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": TASKMASTER_SA},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": TASKMASTER_SA,
                },
                "subjects": [
                    {"kind": "ServiceAccount", "name": TASKMASTER_SA, "namespace": self.namespace}
                ],
            }
        )

    def remove(self) -> None:
        # Background: the namespace controller removes what is left; the next test need not wait.
        try:
            self.core.delete_namespace(self.namespace)
        except ApiException as error:
            if error.status != 404:
                raise
        self.api.close()


def new_namespace() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


def cluster_or_fail() -> Cluster:
    cluster = Cluster()
    if not cluster.healthy():
        raise RuntimeError(
            "the test cluster is not running: `make k8s-up` starts it (make test does)"
        )
    cluster.refresh_images()
    return cluster
