"""`FakeCluster`: an API server on 127.0.0.1 with the controllers and a one-node kubelet."""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from .admission import Admission
from .auth import Rbac, Tokens
from .errors import ApiError
from .gc import GarbageCollector
from .jobs import JobController
from .kubelet import Kubelet, KubeletSettings
from .logs import LogBook
from .meta import Obj
from .namespaces import ensure_defaults
from .outcomes import Outcome, Predicate, Script, Scripts
from .podvolumes import kubeconfig
from .requestlog import ApiRequest, RequestLog
from .resources import BY_KIND, BY_PLURAL, Resource
from .runner import BwrapRunner, ContainerRunner
from .scheduler import Scheduler
from .server import ApiServer
from .store import Store
from .tls import server_context
from .volumes import VolumeBinder

NODE_NAME = "fakecluster-node"


class FakeCluster:
    """A Kubernetes API server and a one-node cluster behind it, for tests.

    with FakeCluster() as cluster:
        api = kubernetes.config.new_client_from_config(cluster.kubeconfig_path)
        ...
    """

    def __init__(
        self,
        *,
        namespace: str = "tesk",
        runner: ContainerRunner | None = None,
        workdir: str | Path | None = None,
        node_cpu: str = "8",
        node_memory: str = "32Gi",
        node_pods: int = 110,
        node_labels: dict[str, str] | None = None,
        extended_resources: dict[str, str] | None = None,
        storage_classes: dict[str, str] | None = None,
        default_storage_class: str | None = "standard",
        rbac: bool = False,
        in_cluster: bool = False,
        kill_grace_cap: float = 2.0,
        restart_backoff: float = 0.2,
        job_retry_backoff: float = 0.1,
        watch_history: int = 10_000,
        bookmark_seconds: float = 1.0,
    ) -> None:
        """
        namespace: created with a `default` ServiceAccount (besides `default` and `kube-system`).
        runner: how containers run (default: BwrapRunner, each container in bubblewrap).
        node_*: the allocatable resources of the node; requests beyond them stay Unschedulable.
        storage_classes: class name -> volumeBindingMode (Immediate, WaitForFirstConsumer);
            default {"standard": "Immediate"}.
        rbac: enforce Roles/ClusterRoles and their bindings for every user but the admin.
        in_cluster: also serve HTTPS (a CA made for the cluster) and give pods what in-cluster
            configuration needs (KUBERNETES_SERVICE_HOST/PORT, token, ca.crt) instead of a
            kubeconfig.
        kill_grace_cap: longest wait between SIGTERM and SIGKILL, whatever the grace period says.
        restart_backoff, job_retry_backoff: first container restart back-off and delay between
            Job pod retries (10 s in Kubernetes; short here so tests stay fast).
        """
        self.namespace = namespace
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="fakecluster-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.errors: list[str] = []  # failures inside the fake's controllers: tests assert none
        self.store = Store(history=watch_history)
        self.tokens = Tokens()
        self.logbook = LogBook()
        self._requests = RequestLog()
        self._scripts = Scripts(on_cancel=self._retry_waiting)
        self._storage_classes = storage_classes or {"standard": "Immediate"}
        self._default_storage_class = default_storage_class
        self.admission = Admission(self.store, lambda: self._default_class())
        self.api = ApiServer(
            self.store,
            self.admission,
            self.logbook,
            self.tokens,
            self._requests,
            rbac=Rbac(self.store) if rbac else None,
            bookmark_seconds=bookmark_seconds,
        )
        self.api.internal_errors = self.errors
        self._node = {
            "cpu": node_cpu,
            "memory": node_memory,
            "pods": str(node_pods),
            "ephemeral-storage": "100Gi",
            **(extended_resources or {}),
        }
        self._node_labels = node_labels or {}
        self._runner = runner
        self._settings: dict[str, Any] = {
            "kill_grace_cap": kill_grace_cap,
            "restart_backoff": restart_backoff,
            "job_retry_backoff": job_retry_backoff,
        }
        self.base_url = ""
        self.kubeconfig_path = ""
        self.tls_url = ""  # with in_cluster: the HTTPS endpoint
        self.ca_path = ""  # with in_cluster: the CA certificate of the HTTPS endpoint
        self._in_cluster = in_cluster
        self._controllers: list[Any] = []
        self._started = False

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeCluster:
        if self._started:
            return self
        self._started = True
        self.base_url = self.api.serve()
        in_cluster_port = None
        ca_certificate = b""
        if self._in_cluster:
            context, ca_path = server_context(self.workdir / "pki")
            self.tls_url = self.api.serve(tls=context)
            self.ca_path = str(ca_path)
            in_cluster_port = int(self.tls_url.rsplit(":", 1)[1])
            ca_certificate = ca_path.read_bytes()
        path = self.workdir / "kubeconfig"
        path.write_text(
            kubeconfig(
                self.base_url, self.tokens.admin_token, self.namespace, user="fakecluster-admin"
            )
        )
        self.kubeconfig_path = str(path)
        self._seed()
        binder = VolumeBinder(self.store, self.errors, self.workdir / "volumes", self._scripts)
        runner = self._runner or BwrapRunner()
        kubelet = Kubelet(
            self.store,
            self.errors,
            KubeletSettings(
                node=NODE_NAME,
                root=self.workdir / "pods",
                api_url=self.base_url,
                python_bin=str(Path(sys.executable).parent),
                kill_grace_cap=self._settings["kill_grace_cap"],
                restart_backoff=self._settings["restart_backoff"],
                in_cluster_port=in_cluster_port,
                ca_certificate=ca_certificate,
            ),
            logbook=self.logbook,
            runner=runner,
            scripts=self._scripts,
            binder=binder,
            tokens=self.tokens,
        )
        self._controllers = [
            GarbageCollector(self.store, self.errors),
            JobController(
                self.store,
                self.admission,
                self.errors,
                retry_backoff=self._settings["job_retry_backoff"],
            ),
            binder,
            Scheduler(self.store, self.errors, NODE_NAME, self._scripts, binder.bind),
            kubelet,
        ]
        for controller in self._controllers:
            controller.start()
        return self

    def close(self) -> None:
        if not self._started:
            return
        self._started = False
        self.api.shutdown()
        for controller in reversed(self._controllers):
            controller.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> FakeCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _seed(self) -> None:
        """What a fresh cluster has: namespaces with their default ServiceAccount and root CA
        ConfigMap, the node, the storage classes."""
        for name in dict.fromkeys(["default", "kube-system", self.namespace]):
            self.create_namespace(name)
        self.store.create(
            BY_PLURAL["nodes"],
            {
                "metadata": {
                    "name": NODE_NAME,
                    "labels": {
                        "kubernetes.io/hostname": NODE_NAME,
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                        **self._node_labels,
                    },
                },
                "spec": {},
                "status": {
                    "capacity": dict(self._node),
                    "allocatable": dict(self._node),
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "True",
                            "reason": "KubeletReady",
                            "message": "kubelet is posting ready status",
                        }
                    ],
                    "addresses": [
                        {"type": "InternalIP", "address": "127.0.0.1"},
                        {"type": "Hostname", "address": NODE_NAME},
                    ],
                    "nodeInfo": {
                        "kubeletVersion": "v1.33.0-fakecluster",
                        "operatingSystem": "linux",
                        "architecture": "amd64",
                        "containerRuntimeVersion": "bwrap",
                    },
                },
            },
        )
        for name, mode in self._storage_classes.items():
            annotations = {}
            if name == self._default_storage_class:
                annotations["storageclass.kubernetes.io/is-default-class"] = "true"
            self.store.create(
                BY_PLURAL["storageclasses"],
                {
                    "metadata": {"name": name, "annotations": annotations},
                    "provisioner": "fakecluster.local/hostpath",
                    "reclaimPolicy": "Delete",
                    "volumeBindingMode": mode,
                },
            )

    def _retry_waiting(self) -> None:
        """A script was cancelled: pods and claims it held back get another chance."""
        for controller in self._controllers:
            if isinstance(controller, Scheduler | VolumeBinder):
                controller.retry_pending()

    def _default_class(self) -> str | None:
        classes, _ = self.store.list(BY_PLURAL["storageclasses"])
        for storage_class in classes:
            annotations = storage_class["metadata"].get("annotations") or {}
            if annotations.get("storageclass.kubernetes.io/is-default-class") == "true":
                return str(storage_class["metadata"]["name"])
        return None

    # ------------------------------------------------------------------ test helpers

    def create_namespace(self, name: str) -> None:
        """A namespace as the namespace and service account controllers leave it."""
        namespace = self.admission.for_create(
            BY_PLURAL["namespaces"], {"metadata": {"name": name}}, ""
        )
        self.store.create(BY_PLURAL["namespaces"], namespace)
        ensure_defaults(self.store, name)

    def apply(self, obj: Obj) -> Obj:
        """Create an object (any served kind) as the admin would, e.g. RBAC objects of a chart."""
        resource = BY_KIND[obj["kind"]]
        namespace = obj.get("metadata", {}).get("namespace") or (
            self.namespace if resource.namespaced else ""
        )
        return self.store.create(resource, self.admission.for_create(resource, obj, namespace))

    def script(self, predicate: Predicate, outcome: Outcome, *, times: int | None = None) -> Script:
        """From now on, the first `times` (default: every) new pods or claims matching
        `predicate` get `outcome` instead of their normal course."""
        return self._scripts.add(predicate, outcome, times)

    @property
    def requests(self) -> list[ApiRequest]:
        """Every request answered so far (the kubelet and controllers make none)."""
        return self._requests.entries()

    def clear_requests(self) -> None:
        self._requests.clear()

    def count_requests(
        self, verb: str | None = None, resource: str | None = None, user: str | None = None
    ) -> int:
        return sum(
            1
            for r in self._requests.entries()
            if (verb is None or r.verb == verb)
            and (resource is None or r.resource == resource)
            and (user is None or r.user == user)
        )

    def objects(self, kind: str, namespace: str | None = None) -> list[Obj]:
        """Copies of the stored objects of a kind ("Pod") or resource ("pods")."""
        resource = _resource(kind)
        items, _ = self.store.list(resource, namespace)
        return items

    def get(self, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        resource = _resource(kind)
        ns = (namespace or self.namespace) if resource.namespaced else ""
        return self.store.try_get(resource, ns, name)

    def logs(self, pod: str, container: str | None = None, namespace: str | None = None) -> str:
        """The current log of a pod's container, as `kubectl logs` shows it."""
        obj = self.get("pods", pod, namespace)
        if obj is None:
            raise ApiError(404, f'pods "{pod}" not found')
        name = container or obj["spec"]["containers"][0]["name"]
        log = self.logbook.current(obj["metadata"]["uid"], name)
        return log.text().decode(errors="replace") if log else ""

    def wait_for(
        self, condition: Callable[[], Any], timeout: float = 20.0, interval: float = 0.02
    ) -> Any:
        """Poll `condition` until it returns something truthy; TimeoutError after `timeout`."""
        end = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > end:
                raise TimeoutError(f"condition not met within {timeout} s")
            time.sleep(interval)

    def compact(self) -> int:
        """Drop the watch history: watches from older resourceVersions get 410 Gone."""
        return self.store.compact()


def _resource(kind: str) -> Resource:
    if kind in BY_KIND:
        return BY_KIND[kind]
    if kind in BY_PLURAL:
        return BY_PLURAL[kind]
    raise KeyError(f"the fake cluster serves no kind or resource {kind!r}")
