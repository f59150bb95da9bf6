"""Where the test cluster lives: versions, directories, addresses. One cluster per machine.

The whole cluster (etcd, control plane, kubelet, containerd, the pods' bridge) runs inside one
network namespace of its own, so every address it uses is inside this machine; the host reaches
the API server through a relay on 127.0.0.1.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

KUBERNETES_VERSION = "v1.34.4"
ETCD_VERSION = "v3.6.4"
CONTAINERD_VERSION = "v2.2.9"

MODULE_DIR = Path(__file__).resolve().parent
REPO = MODULE_DIR.parents[2]

NETNS = "tesk-k8s"
NODE_NAME = "tesk-node"
NODE_ZONE = "tesk-a"
# A node that runs nothing, in another zone (tests/k8s/cluster/standby.py).
STANDBY_NODE = "tesk-standby"
STANDBY_ZONE = "tesk-b"
# The node's address, on a bridge of its own inside the namespace; pods get POD_CIDR.
NODE_IP = "10.250.0.1"
NODE_PREFIX = 24
POD_CIDR = "10.244.0.0/24"
SERVICE_CIDR = "10.96.0.0/24"
API_SERVICE_IP = "10.96.0.1"
API_PORT = 6443
HOST_API_PORT = int(os.environ.get("TESK_K8S_API_PORT", "16443"))


def _cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))


@dataclass(frozen=True)
class Layout:
    """One cluster's directories: programs (kept across clusters), state (removed by down)."""

    state: Path
    run: Path
    cache: Path

    @classmethod
    def default(cls) -> Layout:
        state = Path(os.environ.get("TESK_K8S_STATE", REPO / ".cache" / "k8s"))
        return cls(state=state, run=Path("/run/tesk-k8s"), cache=_cache_home() / "tesk-k8s")

    @property
    def kubernetes_bin(self) -> Path:
        return self.cache / KUBERNETES_VERSION / "bin"

    @property
    def containerd_bin(self) -> Path:
        return self.cache / f"containerd-{CONTAINERD_VERSION}" / "bin"

    @property
    def images(self) -> Path:
        return self.cache / "images"

    @property
    def kubeconfig(self) -> Path:
        return self.state / "kubeconfig"

    @property
    def pki(self) -> Path:
        return self.state / "pki"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def pids(self) -> Path:
        return self.state / "pids"

    @property
    def volumes(self) -> Path:
        """The provisioner's volume roots, one directory per PersistentVolume."""
        return self.state / "volumes"

    @property
    def containerd_socket(self) -> Path:
        return self.run / "containerd.sock"

    def program(self, name: str) -> Path:
        if name.startswith("containerd") or name == "ctr":
            return self.containerd_bin / name
        return self.kubernetes_bin / name
