"""The test cluster's life: up (idempotent), down, and the faults tests inject.

`up` builds what is missing, lays out the network namespace, starts every component in order and
waits until the node is Ready with a default StorageClass; a cluster that is already healthy is
left alone, and a half-dead one (a stopped machine's leftovers) is torn down first.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from . import build, components, images, processes
from .layout import (
    API_PORT,
    HOST_API_PORT,
    NETNS,
    NODE_IP,
    NODE_NAME,
    NODE_PREFIX,
    POD_CIDR,
    Layout,
)
from .pki import Pki

STORAGE_CLASS = "tesk-hostpath"
NO_FSGROUP_CLASS = "tesk-no-fsgroup"
PROVISIONER = "tesk.test/hostpath"
BRIDGE = "tesk0"


class ClusterError(RuntimeError):
    pass


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check)


def _netns_exists() -> bool:
    return Path(f"/run/netns/{NETNS}").exists()


def _make_netns() -> None:
    _run("ip", "netns", "add", NETNS)
    ns = ("ip", "-n", NETNS)
    _run(*ns, "link", "set", "lo", "up")
    _run(*ns, "link", "add", BRIDGE, "type", "bridge")
    _run(*ns, "addr", "add", f"{NODE_IP}/{NODE_PREFIX}", "dev", BRIDGE)
    _run(*ns, "link", "set", BRIDGE, "up")
    for setting in ("net.ipv4.ip_forward=1", "net.bridge.bridge-nf-call-iptables=1"):
        _run("ip", "netns", "exec", NETNS, "sysctl", "-q", "-w", setting, check=False)


class Cluster:
    def __init__(self, layout: Layout | None = None) -> None:
        self.layout = layout or Layout.default()

    # --- state -------------------------------------------------------------------------------

    def running(self) -> list[str]:
        return [
            c.name
            for c in components.components(self.layout)
            if processes.pid_of(self.layout, c.name) is not None
        ]

    def healthy(self) -> bool:
        names = [c.name for c in components.components(self.layout)]
        if not _netns_exists() or self.running() != names:
            return False
        try:
            return self._api_ready() and self._node_ready()
        except (OSError, ClusterError):
            return False

    # --- up / down ---------------------------------------------------------------------------

    def up(self, timeout: float = 240.0) -> None:
        if self.healthy():
            print(f"k8s: cluster is up; kubeconfig {self.layout.kubeconfig}", flush=True)
            return
        build.ensure_programs(self.layout)
        self.down(quiet=True)
        started = time.monotonic()
        self.layout.state.mkdir(parents=True, exist_ok=True)
        self.layout.run.mkdir(parents=True, exist_ok=True)
        _make_netns()
        components.write_configs(self.layout)
        end = time.monotonic() + timeout
        for component in components.components(self.layout):
            processes.start(self.layout, component)
            if component.name == "kube-apiserver":
                self._wait("the API server", self._api_ready, end)
                self._bootstrap()
            elif component.name == "containerd":
                self._wait("containerd", self._containerd_ready, end)
                images.import_all(self.layout)
        self._wait("the node", self._node_ready, end)
        print(
            f"k8s: cluster up in {time.monotonic() - started:.0f} s; "
            f"kubeconfig {self.layout.kubeconfig} (API https://127.0.0.1:{HOST_API_PORT})",
            flush=True,
        )

    def down(self, quiet: bool = False) -> None:
        for component in reversed(components.components(self.layout)):
            processes.stop(self.layout, component.name)
        # A cluster started from another checkout (or left by a stopped machine) holds the same
        # ports, sockets and namespace: its programs go too.
        strays = processes.pids_matching(str(self.layout.cache) + "/")
        for name in ("relay", "provisioner", "standby"):
            strays += processes.pids_matching(f"-m tests.k8s.cluster.{name} ")
        processes.kill_and_wait(sorted(set(strays)), timeout=10)
        self._kill_pods()
        self._unmount()
        if _netns_exists():
            _run("ip", "netns", "delete", NETNS, check=False)
        for state in (self.layout.state, self.layout.run):
            shutil.rmtree(state, ignore_errors=True)
        if not quiet:
            print("k8s: cluster stopped and its state removed", flush=True)

    def _kill_pods(self) -> None:
        # Pod processes outlive containerd and its shims: kill them by their cgroups.
        pids: set[int] = set()
        for procs in Path("/sys/fs/cgroup").glob("*/kubepods*/**/cgroup.procs"):
            try:
                pids.update(int(line) for line in procs.read_text().split())
            except OSError:
                continue
        pids.update(processes.pids_matching(str(self.layout.containerd_socket)))
        processes.kill_and_wait(sorted(pids), timeout=5)
        for root in Path("/sys/fs/cgroup").glob("*/kubepods*"):
            for directory in sorted(root.glob("**/"), key=lambda p: len(p.parts), reverse=True):
                with contextlib.suppress(OSError):
                    directory.rmdir()

    def _unmount(self) -> None:
        prefixes = (str(self.layout.state), str(self.layout.run), "/run/netns/cni-")
        with open("/proc/self/mounts") as mounts:
            points = [line.split()[1] for line in mounts]
        points = [p.replace("\\040", " ") for p in points if p.startswith(prefixes)]
        for point in sorted(set(points), key=len, reverse=True):
            _run("umount", "-l", point, check=False)
        for netns in Path("/run/netns").glob("cni-*"):
            netns.unlink(missing_ok=True)

    # --- readiness ---------------------------------------------------------------------------

    def _wait(self, what: str, ready: object, end: float) -> None:
        assert callable(ready)
        while time.monotonic() < end:
            try:
                if ready():
                    return
            except (OSError, ClusterError):
                pass
            time.sleep(0.5)
        raise ClusterError(f"{what} did not become ready; logs in {self.layout.logs}")

    def _ssl(self) -> ssl.SSLContext:
        pki = Pki(self.layout.pki)
        context = ssl.create_default_context(cafile=str(pki.path("ca", "crt")))
        context.load_cert_chain(str(pki.path("admin", "crt")), str(pki.path("admin", "key")))
        return context

    def request(self, method: str, path: str, body: object | None = None) -> object:
        """A call to the API server as the cluster admin (method PATCH_MERGE: a merge patch)."""
        data = None if body is None else json.dumps(body).encode()
        content_type = "application/json"
        if method == "PATCH_MERGE":
            method, content_type = "PATCH", "application/merge-patch+json"
        req = urllib.request.Request(
            f"https://127.0.0.1:{HOST_API_PORT}{path}",
            data=data,
            method=method,
            headers={"Content-Type": content_type},
        )
        try:
            with urllib.request.urlopen(req, context=self._ssl(), timeout=10) as response:
                text = response.read().decode()
        except urllib.error.HTTPError as error:
            raise ClusterError(f"{method} {path}: {error.code} {error.read().decode()}") from None
        if not text:
            return {}
        return json.loads(text) if text.startswith("{") else text

    def _api_ready(self) -> bool:
        return self.request("GET", "/readyz") == "ok"

    def _containerd_ready(self) -> bool:
        return (
            self.layout.containerd_socket.exists()
            and images.ctr(self.layout, "version", check=False).returncode == 0
        )

    def _node_ready(self) -> bool:
        node = self.request("GET", f"/api/v1/nodes/{NODE_NAME}")
        assert isinstance(node, dict)
        conditions = node.get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def _bootstrap(self) -> None:
        """Cluster-wide objects a real cluster comes with: a default StorageClass, and one whose
        volumes ignore fsGroup, as many drivers' ReadWriteMany volumes do."""
        for name, default, parameters in (
            (STORAGE_CLASS, "true", {}),
            (NO_FSGROUP_CLASS, "false", {"fsGroup": "ignored"}),
        ):
            storage_class = {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {
                    "name": name,
                    "annotations": {"storageclass.kubernetes.io/is-default-class": default},
                },
                "provisioner": PROVISIONER,
                "parameters": parameters,
                "reclaimPolicy": "Delete",
                "volumeBindingMode": "WaitForFirstConsumer",
            }
            try:
                self.request("POST", "/apis/storage.k8s.io/v1/storageclasses", storage_class)
            except ClusterError as error:
                if "AlreadyExists" not in str(error):
                    raise

    def refresh_images(self) -> None:
        """Imports TESK's image again when its sources changed since the cluster came up."""
        images.import_all(self.layout)

    # --- faults ------------------------------------------------------------------------------

    def restart(self, name: str) -> None:
        """Stops one component and starts it again with the same flags."""
        component = next(c for c in components.components(self.layout) if c.name == name)
        processes.stop(self.layout, name)
        processes.start(self.layout, component)
        if name == "kube-apiserver":
            self._wait("the API server", self._api_ready, time.monotonic() + 120)

    def cut_pods_from_api(self, cut: bool = True) -> None:
        """Resets (and refuses) every TCP connection from a pod to the API server, or stops
        doing so: what a flaky network or a proxy between them does."""
        rule = ["INPUT", "-p", "tcp", "--dport", str(API_PORT), "-s", POD_CIDR]
        rule += ["-j", "REJECT", "--reject-with", "tcp-reset"]
        action = "-I" if cut else "-D"
        _run("ip", "netns", "exec", NETNS, "iptables", action, *rule)

    def pause(self, name: str) -> None:
        processes.pause(self.layout, name)

    def resume(self, name: str) -> None:
        processes.resume(self.layout, name)
