"""TESK's chart installed into the test cluster and served on this machine's loopback.

    python -m tests.k8s.cluster serve [--port 8080]

installs (or upgrades) deployment/charts/tesk with the image localhost/tesk:dev: the API in the
namespace `tesk`, its tasks in `tesk-tasks`, both enforcing Pod Security `restricted`. It waits
until the API is ready, then forwards 127.0.0.1:PORT to the API's Service through the API server
(`kubectl port-forward`) until Ctrl-C. The functions here are also what the chart tests use.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from . import images
from .cluster import Cluster, ClusterError
from .layout import REPO

CHART = REPO / "deployment" / "charts" / "tesk"
HELM = REPO / ".cache" / "bin" / "helm"
RELEASE = "tesk"
NAMESPACE = "tesk"
TASK_NAMESPACE = "tesk-tasks"
SERVICE_PORT = 80
INSTALL_TIMEOUT = "5m"


class ServeError(RuntimeError):
    pass


def kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        raise ServeError("kubectl is not on the PATH (it forwards the API's port)")
    return found


def helm_binary() -> Path:
    if not HELM.is_file():
        raise ServeError(f"helm is not at {HELM}: scripts/fetch-helm.sh puts it there")
    return HELM


def image_values() -> dict[str, object]:
    repository, _, tag = images.TESK_IMAGE.rpartition(":")
    return {"image.repository": repository, "image.tag": tag, "image.pullPolicy": "IfNotPresent"}


@dataclass(frozen=True)
class Release:
    """One installation of the chart: its API namespace and the namespace its tasks run in."""

    namespace: str = NAMESPACE
    task_namespace: str = TASK_NAMESPACE
    name: str = RELEASE
    values_files: tuple[Path, ...] = ()
    # `--set-json` values, on top of the test cluster's image and the task namespace.
    values: dict[str, object] = field(default_factory=dict)

    def set_values(self) -> dict[str, object]:
        return {
            **image_values(),
            "tasks.namespace": self.task_namespace,
            "persistence.size": "256Mi",
            "tasks.defaultDiskGb": 0.25,
            # A new image under the same tag restarts the API pod on `helm upgrade`.
            "podAnnotations": {"tesk.test/image-sources": images._tesk_sources_digest()},
            **self.values,
        }

    def helm_args(self) -> list[str]:
        args: list[str] = []
        for values_file in self.values_files:
            args += ["--values", str(values_file)]
        for key, value in self.set_values().items():
            args += ["--set-json", f"{key}={json.dumps(value)}"]
        return args


def _kubectl(cluster: Cluster, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [kubectl(), "--kubeconfig", str(cluster.layout.kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise ServeError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def ensure_namespace(cluster: Cluster, name: str, pod_security: str = "restricted") -> None:
    """Creates the namespace or updates its labels: Pod Security `pod_security` is enforced."""
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {
                "pod-security.kubernetes.io/enforce": pod_security,
                "pod-security.kubernetes.io/enforce-version": "latest",
            },
        },
    }
    _kubectl(cluster, "apply", "-f", "-", stdin=json.dumps(namespace))


def diagnose(cluster: Cluster, namespaces: Iterable[str]) -> str:
    """What the namespaces' pods and events say, for an installation that did not get ready."""
    lines = []
    for namespace in namespaces:
        for args in (
            ("get", "pods,pvc,jobs", "-o", "wide"),
            ("get", "events", "--sort-by=.lastTimestamp"),
        ):
            try:
                text = _kubectl(cluster, "-n", namespace, *args)
            except ServeError as error:
                text = str(error)
            lines.append(f"--- kubectl -n {namespace} {' '.join(args)}\n{text}")
    return "\n".join(lines)


def install(cluster: Cluster, release: Release, helm: Path | None = None) -> None:
    """`helm upgrade --install` of the chart; returns when the API is ready."""
    ensure_namespace(cluster, release.namespace)
    if release.task_namespace != release.namespace:
        ensure_namespace(cluster, release.task_namespace)
    argv = [
        str(helm or helm_binary()),
        *("upgrade", "--install", release.name, str(CHART)),
        *("--kubeconfig", str(cluster.layout.kubeconfig), "--namespace", release.namespace),
        *("--wait", "--timeout", INSTALL_TIMEOUT),
        *release.helm_args(),
    ]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ServeError(
            f"helm upgrade --install failed:\n{done.stdout}\n{done.stderr}\n"
            + diagnose(cluster, {release.namespace, release.task_namespace})
        )


def uninstall(cluster: Cluster, release: Release, helm: Path | None = None) -> None:
    """Removes the release and its namespaces (without waiting for them to go)."""
    subprocess.run(
        [
            str(helm or helm_binary()),
            *("uninstall", release.name, "--namespace", release.namespace),
            *("--kubeconfig", str(cluster.layout.kubeconfig)),
        ],
        capture_output=True,
        check=False,
    )
    for namespace in {release.namespace, release.task_namespace}:
        with contextlib.suppress(ServeError):
            _kubectl(cluster, "delete", "namespace", namespace, "--wait=false")


@dataclass
class Forward:
    """A running `kubectl port-forward` to the release's Service."""

    url: str
    process: subprocess.Popen[str]


@contextlib.contextmanager
def port_forward(cluster: Cluster, release: Release, port: int = 0) -> Iterator[Forward]:
    """Forwards 127.0.0.1:port (0: a free one) to the API's Service through the API server."""
    process = subprocess.Popen(
        [
            *(kubectl(), "--kubeconfig", str(cluster.layout.kubeconfig)),
            *("--namespace", release.namespace, "port-forward", f"svc/{release.name}"),
            *("--address", "127.0.0.1", f"{port or ''}:{SERVICE_PORT}"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        match = re.search(r"Forwarding from 127\.0\.0\.1:(\d+)", first_line)
        if not match:
            rest = first_line + (process.stdout.read() if process.poll() is not None else "")
            raise ServeError(f"kubectl port-forward said: {rest.strip()!r}")
        # Keep reading its "Handling connection" lines so that it never blocks on a full pipe.
        threading.Thread(target=process.stdout.read, daemon=True).start()
        yield Forward(f"http://127.0.0.1:{match.group(1)}", process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def serve(port: int) -> int:
    """Installs the chart and forwards 127.0.0.1:port to it until Ctrl-C."""
    cluster = Cluster()
    if not cluster.healthy():
        print("k8s: the test cluster is not running: `make k8s-up` starts it", file=sys.stderr)
        return 1
    release = Release()
    try:
        cluster.refresh_images()
        print(
            f"k8s: installing the chart (release {release.name}, API in namespace "
            f"{release.namespace}, tasks in {release.task_namespace}) ...",
            flush=True,
        )
        install(cluster, release)
        while True:
            with port_forward(cluster, release, port) as forward:
                print(f"k8s: TES at {forward.url}/ga4gh/tes/v1 (Ctrl-C stops)", flush=True)
                code = forward.process.wait()
            print(f"k8s: port-forward ended ({code}); starting it again", flush=True)
            time.sleep(1)
    except KeyboardInterrupt:
        print("\nk8s: stopped serving; the release stays installed", flush=True)
        return 0
    except (ServeError, ClusterError) as error:
        print(f"k8s: {error}", file=sys.stderr)
        return 1
