"""The cluster's programs, each with its flags and configuration files, configured as a
production cluster is: TLS everywhere, ServiceAccount tokens, Node and RBAC authorization, Pod
Security, ResourceQuota and LimitRange admission, a kubelet that authenticates its callers."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .layout import (
    API_PORT,
    API_SERVICE_IP,
    HOST_API_PORT,
    NETNS,
    NODE_IP,
    NODE_NAME,
    NODE_ZONE,
    POD_CIDR,
    SERVICE_CIDR,
    STANDBY_NODE,
    STANDBY_ZONE,
    Layout,
)
from .pki import Identity, Pki

# Seconds a pod stays bound to a NotReady or unreachable node; the default 300 s would make a lost
# node take five minutes to show.
NODE_TOLERATION_S = 15
NODE_GRACE_S = 20


# Every request, who made it and what became of it: tests read it to check the chart's RBAC.
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [{"level": "Metadata"}],
}


def audit_log(layout: Layout) -> Path:
    return layout.logs / "audit.log"


@dataclass(frozen=True)
class Component:
    """One long-running program; `in_netns` runs it inside the cluster's network namespace."""

    name: str
    argv: list[str]
    in_netns: bool = True
    env: dict[str, str] = field(default_factory=dict)


def identities() -> list[Identity]:
    api_names = (
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "localhost",
    )
    return [
        Identity(
            "apiserver",
            "kube-apiserver",
            dns_names=api_names,
            ip_addresses=(NODE_IP, API_SERVICE_IP, "127.0.0.1"),
        ),
        Identity("apiserver-kubelet-client", "kube-apiserver-kubelet-client", "system:masters"),
        Identity("admin", "kubernetes-admin", "system:masters"),
        Identity("controller-manager", "system:kube-controller-manager"),
        Identity("scheduler", "system:kube-scheduler"),
        Identity("kube-proxy", "system:kube-proxy"),
        Identity("kubelet-client", f"system:node:{NODE_NAME}", "system:nodes"),
        Identity(
            "kubelet",
            f"system:node:{NODE_NAME}",
            "system:nodes",
            dns_names=(NODE_NAME,),
            ip_addresses=(NODE_IP,),
        ),
    ]


def kubeconfig(pki: Pki, user: str, server: str) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "tesk-test",
                    "cluster": {
                        "server": server,
                        "certificate-authority-data": _b64(pki.path("ca", "crt")),
                    },
                }
            ],
            "users": [
                {
                    "name": user,
                    "user": {
                        "client-certificate-data": _b64(pki.path(user, "crt")),
                        "client-key-data": _b64(pki.path(user, "key")),
                    },
                }
            ],
            "contexts": [{"name": "tesk-test", "context": {"cluster": "tesk-test", "user": user}}],
            "current-context": "tesk-test",
        },
        indent=2,
    )


def _b64(path: Path) -> str:
    import base64

    return base64.b64encode(path.read_bytes()).decode()


def _write(path: Path, text: str) -> None:
    # kube-proxy exits when its configuration file is written to, even with the same content.
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def write_configs(layout: Layout) -> None:
    """Writes certificates, kubeconfigs and the node's configuration files."""
    pki = Pki(layout.pki)
    pki.ensure(identities())
    conf = layout.state / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    inside = f"https://{NODE_IP}:{API_PORT}"
    for user in ("controller-manager", "scheduler", "kube-proxy"):
        _write(conf / f"{user}.kubeconfig", kubeconfig(pki, user, inside))
    _write(conf / "kubelet.kubeconfig", kubeconfig(pki, "kubelet-client", inside))
    _write(layout.kubeconfig, kubeconfig(pki, "admin", f"https://127.0.0.1:{HOST_API_PORT}"))
    layout.kubeconfig.chmod(0o600)
    _write(conf / "admin-inside.kubeconfig", kubeconfig(pki, "admin", inside))
    _write(conf / "kubelet.yaml", json.dumps(_kubelet_config(layout, pki), indent=2))
    _write(conf / "kube-proxy.yaml", json.dumps(_proxy_config(conf), indent=2))
    _write(conf / "containerd.toml", _containerd_config(layout))
    _write(conf / "audit-policy.yaml", json.dumps(AUDIT_POLICY, indent=2))
    cni = layout.state / "cni" / "net.d"
    cni.mkdir(parents=True, exist_ok=True)
    _write(cni / "10-tesk.conflist", json.dumps(_cni_config(layout), indent=2))


def _kubelet_config(layout: Layout, pki: Pki) -> dict[str, object]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": NODE_IP,
        "port": 10250,
        "readOnlyPort": 0,
        "tlsCertFile": str(pki.path("kubelet", "crt")),
        "tlsPrivateKeyFile": str(pki.path("kubelet", "key")),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(pki.path("ca", "crt"))},
        },
        "authorization": {"mode": "Webhook"},
        "cgroupDriver": "cgroupfs",
        "containerRuntimeEndpoint": f"unix://{layout.containerd_socket}",
        "failSwapOn": False,
        # This machine's cgroups are v1 (hybrid); Kubernetes 1.34 still supports them.
        "failCgroupV1": False,
        "resolvConf": "/etc/resolv.conf",
        "nodeStatusUpdateFrequency": "5s",
        "nodeStatusReportFrequency": "10s",
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
        },
        "serializeImagePulls": False,
        "shutdownGracePeriod": "0s",
        "maxPods": 110,
        "podPidsLimit": 4096,
    }


def _proxy_config(conf: Path) -> dict[str, object]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(conf / "kube-proxy.kubeconfig")},
        "mode": "iptables",
        "clusterCIDR": POD_CIDR,
        "hostnameOverride": NODE_NAME,
        "bindAddress": NODE_IP,
        "healthzBindAddress": f"{NODE_IP}:10256",
        "metricsBindAddress": f"{NODE_IP}:10249",
        # conntrack limits are the host's, not this namespace's: leave them alone.
        "conntrack": {"maxPerCore": 0, "min": 0},
    }


def _containerd_config(layout: Layout) -> str:
    cri_images = '[plugins."io.containerd.cri.v1.images"]'
    cri_runtime = '[plugins."io.containerd.cri.v1.runtime"]'
    runc = '[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]'
    return f"""version = 3
root = "{layout.state / "containerd"}"
state = "{layout.run / "containerd"}"

[grpc]
  address = "{layout.containerd_socket}"

{cri_images}
  snapshotter = "overlayfs"
  # No registry is reachable: every image is imported, never pulled.
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "localhost/pause:tesk"

{cri_runtime}
  # This machine withholds CAP_SYS_RESOURCE, so no process may lower its OOM score below 0, as the
  # kubelet asks for sandboxes (-998) and Guaranteed pods: clamp at containerd's own score.
  restrict_oom_score_adj = true
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
  {runc}
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
      BinaryName = "/usr/sbin/runc"
      SystemdCgroup = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "{layout.state / "cni" / "net.d"}"
"""


def _cni_config(layout: Layout) -> dict[str, object]:
    return {
        "cniVersion": "1.0.0",
        "name": "tesk",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_CIDR}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(layout.state / "cni" / "ipam"),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def components(layout: Layout) -> list[Component]:
    """Every program, in start order."""
    pki = Pki(layout.pki)
    conf = layout.state / "conf"
    ca = str(pki.path("ca", "crt"))

    def program(name: str) -> str:
        return str(layout.program(name))

    return [
        Component(
            "relay",
            [
                sys.executable,
                "-m",
                "tests.k8s.cluster.relay",
                "--listen",
                f"127.0.0.1:{HOST_API_PORT}",
                "--connect",
                f"{NODE_IP}:{API_PORT}",
                "--netns",
                NETNS,
            ],
            in_netns=False,
        ),
        Component(
            "etcd",
            [
                program("etcd"),
                f"--data-dir={layout.state / 'etcd'}",
                "--listen-client-urls=http://127.0.0.1:2379",
                "--advertise-client-urls=http://127.0.0.1:2379",
                "--listen-peer-urls=http://127.0.0.1:2380",
                "--listen-metrics-urls=http://127.0.0.1:2381",
                "--quota-backend-bytes=2147483648",
                "--log-level=warn",
            ],
        ),
        Component(
            "kube-apiserver",
            [
                program("kube-apiserver"),
                "--etcd-servers=http://127.0.0.1:2379",
                f"--advertise-address={NODE_IP}",
                "--bind-address=0.0.0.0",
                f"--secure-port={API_PORT}",
                f"--tls-cert-file={pki.path('apiserver', 'crt')}",
                f"--tls-private-key-file={pki.path('apiserver', 'key')}",
                f"--client-ca-file={ca}",
                f"--kubelet-certificate-authority={ca}",
                f"--kubelet-client-certificate={pki.path('apiserver-kubelet-client', 'crt')}",
                f"--kubelet-client-key={pki.path('apiserver-kubelet-client', 'key')}",
                "--kubelet-preferred-address-types=InternalIP",
                f"--service-account-key-file={pki.path('sa', 'pub')}",
                f"--service-account-signing-key-file={pki.path('sa', 'key')}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--authorization-mode=Node,RBAC",
                # On top of the default plugins (PodSecurity, ResourceQuota, LimitRanger,
                # ServiceAccount, DefaultStorageClass, StorageObjectInUseProtection, ...).
                "--enable-admission-plugins=NodeRestriction,PodSecurity,ResourceQuota,LimitRanger",
                f"--default-not-ready-toleration-seconds={NODE_TOLERATION_S}",
                f"--default-unreachable-toleration-seconds={NODE_TOLERATION_S}",
                "--allow-privileged=true",
                "--profiling=false",
                f"--audit-policy-file={conf / 'audit-policy.yaml'}",
                f"--audit-log-path={audit_log(layout)}",
                "--audit-log-maxsize=200",
                "--audit-log-maxbackup=1",
                "--v=1",
            ],
        ),
        Component(
            "containerd",
            [program("containerd"), f"--config={conf / 'containerd.toml'}"],
            env={"PATH": f"{layout.containerd_bin}:/usr/sbin:/usr/bin:/sbin:/bin"},
        ),
        Component(
            "kube-controller-manager",
            [
                program("kube-controller-manager"),
                f"--kubeconfig={conf / 'controller-manager.kubeconfig'}",
                f"--authentication-kubeconfig={conf / 'controller-manager.kubeconfig'}",
                f"--authorization-kubeconfig={conf / 'controller-manager.kubeconfig'}",
                "--bind-address=127.0.0.1",
                "--leader-elect=false",
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={pki.path('sa', 'key')}",
                f"--root-ca-file={ca}",
                f"--cluster-signing-cert-file={ca}",
                f"--cluster-signing-key-file={pki.path('ca', 'key')}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--controllers=*",
                f"--node-monitor-grace-period={NODE_GRACE_S}s",
                "--node-monitor-period=2s",
                "--v=1",
            ],
        ),
        Component(
            "kube-scheduler",
            [
                program("kube-scheduler"),
                f"--kubeconfig={conf / 'scheduler.kubeconfig'}",
                f"--authentication-kubeconfig={conf / 'scheduler.kubeconfig'}",
                f"--authorization-kubeconfig={conf / 'scheduler.kubeconfig'}",
                "--bind-address=127.0.0.1",
                "--leader-elect=false",
                "--v=1",
            ],
        ),
        Component(
            "kubelet",
            [
                program("kubelet"),
                f"--config={conf / 'kubelet.yaml'}",
                f"--kubeconfig={conf / 'kubelet.kubeconfig'}",
                f"--root-dir={layout.state / 'kubelet'}",
                f"--hostname-override={NODE_NAME}",
                f"--node-ip={NODE_IP}",
                f"--node-labels=topology.kubernetes.io/zone={NODE_ZONE}",
                "--v=1",
            ],
            env={"PATH": f"{layout.containerd_bin}:/usr/sbin:/usr/bin:/sbin:/bin"},
        ),
        Component(
            "kube-proxy",
            [program("kube-proxy"), f"--config={conf / 'kube-proxy.yaml'}", "--v=1"],
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        ),
        Component(
            "provisioner",
            [
                sys.executable,
                "-m",
                "tests.k8s.cluster.provisioner",
                "--kubeconfig",
                str(layout.kubeconfig),
                "--root",
                str(layout.volumes),
                "--node",
                NODE_NAME,
            ],
            in_netns=False,
        ),
        Component(
            "standby",
            [
                sys.executable,
                "-m",
                "tests.k8s.cluster.standby",
                "--kubeconfig",
                str(layout.kubeconfig),
                "--name",
                STANDBY_NODE,
                "--zone",
                STANDBY_ZONE,
            ],
            in_netns=False,
        ),
    ]
