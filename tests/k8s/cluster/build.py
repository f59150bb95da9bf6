"""Builds the cluster's programs from the Go module proxy, once per version.

The Go modules beside this file pin every version (go.mod, go.sum); binaries are kept under
~/.cache/tesk-k8s/<version>/bin, so only a cold machine pays for the build.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from .layout import KUBERNETES_VERSION, MODULE_DIR, Layout

KUBERNETES_PROGRAMS = {
    "etcd": "go.etcd.io/etcd/server/v3",
    "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
    "kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
    "kube-scheduler": "k8s.io/kubernetes/cmd/kube-scheduler",
    "kubelet": "k8s.io/kubernetes/cmd/kubelet",
    "kube-proxy": "k8s.io/kubernetes/cmd/kube-proxy",
}
CONTAINERD_PROGRAMS = {
    "containerd": "github.com/containerd/containerd/v2/cmd/containerd",
    "containerd-shim-runc-v2": "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2",
    "ctr": "github.com/containerd/containerd/v2/cmd/ctr",
}


def _version_flags() -> str:
    """What `make release` of Kubernetes stamps in: clients and skew checks read it."""
    major, minor, _ = KUBERNETES_VERSION.lstrip("v").split(".")
    flags = []
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {package}.gitVersion={KUBERNETES_VERSION}",
            f"-X {package}.gitMajor={major}",
            f"-X {package}.gitMinor={minor}",
            f"-X {package}.gitTreeState=clean",
        ]
    return " ".join(flags)


def _go_build(
    module: Path, programs: dict[str, str], target: Path, log: Path, ldflags: str = ""
) -> None:
    missing = {name: pkg for name, pkg in programs.items() if not (target / name).exists()}
    if not missing:
        return
    go = shutil.which("go")
    if go is None:
        raise SystemExit("k8s: Go is needed to build the test cluster (apt-get install golang)")
    target.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-buildvcs=false -trimpath")
    # containerd's shim and the kubelet are static binaries either way; cgo is not needed.
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=target) as scratch:
        for name, package in missing.items():
            print(f"k8s: building {name} ({package})", flush=True)
            with log.open("a") as out:
                result = subprocess.run(
                    [go, "build", f"-ldflags=-s -w {ldflags}", "-o", f"{scratch}/{name}", package],
                    cwd=module,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    check=False,
                )
            if result.returncode != 0:
                raise SystemExit(f"k8s: building {name} failed; see {log}")
            os.replace(f"{scratch}/{name}", target / name)
    print(f"k8s: built {', '.join(missing)} in {time.monotonic() - started:.0f} s", flush=True)


def ensure_programs(layout: Layout) -> None:
    layout.logs.mkdir(parents=True, exist_ok=True)
    log = layout.logs / "build.log"
    _go_build(MODULE_DIR, KUBERNETES_PROGRAMS, layout.kubernetes_bin, log, _version_flags())
    _go_build(MODULE_DIR / "containerd", CONTAINERD_PROGRAMS, layout.containerd_bin, log)
