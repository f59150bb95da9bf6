"""The images the test cluster runs, all made on this machine (no registry is reachable) and
imported into containerd, never pulled:

- localhost/pause:tesk, the pod sandbox: a static `pause` compiled here;
- busybox:1.36 (docker.io/library/busybox:1.36), the executors' image: Debian's busybox-static;
- localhost/tesk:dev, TESK itself: the repository's Dockerfile built by podman on a Debian base
  made with debootstrap (python3 from Debian stands in for python:3.11-slim-bookworm).

Archives are kept under ~/.cache/tesk-k8s/images; TESK's is rebuilt when its sources change.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from .layout import REPO, Layout

PAUSE_IMAGE = "localhost/pause:tesk"
BUSYBOX_IMAGE = "busybox:1.36"
TESK_IMAGE = "localhost/tesk:dev"
# Bump the tag when the way it is made changes.
PYTHON_BASE = "localhost/tesk-python-base:bookworm-1"
DEBIAN_MIRROR = "http://deb.debian.org/debian"

PAUSE_C = r"""
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
static void quit(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, NULL, WNOHANG) > 0) {} }
int main(void) {
  signal(SIGINT, quit);
  signal(SIGTERM, quit);
  signal(SIGCHLD, reap);
  for (;;) pause();
}
"""


def ctr(layout: Layout, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(layout.program("ctr")), "--address", str(layout.containerd_socket), *args],
        capture_output=True,
        text=True,
        check=check,
    )


def _docker_archive(rootfs: Path, tag: str, config: dict[str, object], out: Path) -> None:
    """Writes a one-layer image in the docker-archive format that `ctr images import` reads."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        for path in sorted(rootfs.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(rootfs)), recursive=False)
    layer_bytes = layer.getvalue()
    diff_id = "sha256:" + hashlib.sha256(layer_bytes).hexdigest()
    image_config = {
        "architecture": "amd64",
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }
    config_bytes = json.dumps(image_config).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    manifest = [{"Config": config_name, "RepoTags": [tag], "Layers": ["layer.tar"]}]
    tmp = out.with_suffix(f".{os.getpid()}.partial")
    with tarfile.open(tmp, mode="w") as archive:
        for name, data in (
            ("layer.tar", layer_bytes),
            (config_name, config_bytes),
            ("manifest.json", json.dumps(manifest).encode()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    os.replace(tmp, out)


def _pause_archive(layout: Layout) -> Path:
    out = layout.images / "pause.tar"
    if out.exists():
        return out
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch, "pause.c")
        source.write_text(PAUSE_C)
        rootfs = Path(scratch, "rootfs")
        rootfs.mkdir()
        subprocess.run(
            ["gcc", "-static", "-Os", "-o", str(rootfs / "pause"), str(source)], check=True
        )
        _docker_archive(rootfs, PAUSE_IMAGE, {"Entrypoint": ["/pause"], "User": "65535"}, out)
    return out


def _busybox_archive(layout: Layout) -> Path:
    out = layout.images / "busybox.tar"
    if out.exists():
        return out
    busybox = shutil.which("busybox") or "/bin/busybox"
    with tempfile.TemporaryDirectory() as scratch:
        rootfs = Path(scratch)
        for directory in ("bin", "etc", "tmp", "root", "home", "var", "usr/bin", "usr/sbin"):
            (rootfs / directory).mkdir(parents=True)
        (rootfs / "tmp").chmod(0o1777)
        shutil.copy(busybox, rootfs / "bin" / "busybox")
        applets = subprocess.run(
            [busybox, "--list"], capture_output=True, text=True, check=True
        ).stdout.split()
        for applet in applets:
            if not (rootfs / "bin" / applet).exists():
                (rootfs / "bin" / applet).symlink_to("busybox")
        (rootfs / "etc" / "passwd").write_text(
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n"
        )
        (rootfs / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
        _docker_archive(
            rootfs,
            BUSYBOX_IMAGE,
            {"Cmd": ["sh"], "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]},
            out,
        )
    return out


def _podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=check)


def _python_base() -> None:
    """Debian bookworm with python3, as the Dockerfile's python:3.11-slim-bookworm stands in."""
    if _podman("image", "exists", PYTHON_BASE, check=False).returncode == 0:
        return
    print("k8s: making the Python base image with debootstrap", flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        rootfs = Path(scratch, "rootfs")
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=python3,python3-venv,ca-certificates",
                "bookworm",
                str(rootfs),
                DEBIAN_MIRROR,
            ],
            check=True,
            capture_output=True,
        )
        (rootfs / "usr/local/bin/python").symlink_to("/usr/bin/python3")
        # The image build reaches PyPI the way this machine does, through the CAs it trusts.
        shutil.copy("/etc/ssl/certs/ca-certificates.crt", rootfs / "etc/ssl/certs/")
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            shutil.rmtree(rootfs / cache, ignore_errors=True)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        subprocess.run(
            ["podman", "import", "--change", 'CMD ["python3"]', "-", PYTHON_BASE],
            stdin=tar.stdout,
            check=True,
            capture_output=True,
        )
        tar.wait()


def _tesk_sources_digest() -> str:
    digest = hashlib.sha256()
    files = [REPO / "Dockerfile", REPO / "pyproject.toml", REPO / "README.md"]
    files += sorted(
        p for p in (REPO / "tesk").rglob("*") if p.is_file() and "__pycache__" not in p.parts
    )
    for path in files:
        digest.update(str(path.relative_to(REPO)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _tesk_archive(layout: Layout) -> Path:
    out = layout.images / f"tesk-{_tesk_sources_digest()}.tar"
    if out.exists():
        return out
    _python_base()
    print("k8s: building the TESK image with podman", flush=True)
    result = _podman(
        "build",
        "--build-arg",
        f"PYTHON_IMAGE={PYTHON_BASE}",
        "-t",
        TESK_IMAGE,
        str(REPO),
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"podman build failed:\n{result.stdout}\n{result.stderr}")
    for old in layout.images.glob("tesk-*.tar"):
        old.unlink()
    tmp = out.with_suffix(f".{os.getpid()}.partial")
    _podman("save", "--format", "docker-archive", "-o", str(tmp), TESK_IMAGE)
    os.replace(tmp, out)
    return out


def archives(layout: Layout) -> list[Path]:
    layout.images.mkdir(parents=True, exist_ok=True)
    return [_pause_archive(layout), _busybox_archive(layout), _tesk_archive(layout)]


def import_all(layout: Layout) -> None:
    """Imports every image whose archive is not the one this cluster imported last under its
    tag (TESK's when its sources changed, also back to an earlier version: several checkouts
    may share one cluster)."""
    marks = layout.state / "imported"
    marks.mkdir(parents=True, exist_ok=True)
    for archive in archives(layout):
        # One mark per image tag (tesk-<digest>.tar -> "tesk"), naming the archive imported.
        mark = marks / f"{archive.name.split('-')[0].removesuffix('.tar')}.last"
        if mark.exists() and mark.read_text() == archive.name:
            continue
        ctr(layout, "-n", "k8s.io", "images", "import", str(archive))
        mark.write_text(archive.name)
