"""How the fake kubelet runs a container: the command on this machine inside bubblewrap.

The sandbox is built like a container: a tmpfs root with read-only binds of the host's top-level
entries (so paths that do not exist on the host can be mount points), a private /tmp, /proc and
/dev, its own PID namespace with the command as PID 1 (so SIGTERM reaches only a command that
handles it, and killing PID 1 ends every process of the container), its own hostname. The
network is the host's. Images are not run: the command comes from the host's file system.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

_HIDDEN_TOP_LEVEL = {"proc", "dev", "tmp", "sys"}


@dataclass(frozen=True)
class Mount:
    host_path: str
    container_path: str
    read_only: bool


@dataclass(frozen=True)
class Launch:
    """Everything the kubelet decided about one container run."""

    namespace: str
    pod: str
    container: str
    argv: list[str]
    env: dict[str, str]
    working_dir: str | None
    mounts: list[Mount] = field(default_factory=list)


class StartError(Exception):
    """The runtime could not start the container (reported as StartError, exit code 128)."""


class ContainerProcess(Protocol):
    @property
    def output(self) -> IO[bytes]:
        """stdout and stderr together, as written; EOF once every writer is gone."""

    def poll(self) -> int | None:
        """The exit code once exited (128 + n when killed by signal n), else None."""

    def signal(self, signum: int) -> None:
        """Send `signum` to the container's PID 1 (SIGKILL ends every process in it)."""


class ContainerRunner(Protocol):
    def start(self, launch: Launch) -> ContainerProcess:
        """Start the container or raise StartError."""


class _BwrapProcess:
    def __init__(self, popen: subprocess.Popen[bytes], child_pid: int | None) -> None:
        self._popen = popen
        self._child = child_pid
        assert popen.stdout is not None
        self._output = popen.stdout

    @property
    def output(self) -> IO[bytes]:
        return self._output

    def poll(self) -> int | None:
        code = self._popen.poll()
        if code is None:
            return None
        return 128 - code if code < 0 else code

    def signal(self, signum: int) -> None:
        target = self._child if self._child is not None else self._popen.pid
        with contextlib.suppress(ProcessLookupError):
            os.kill(target, signum)
        if signum == signal.SIGKILL:
            with contextlib.suppress(ProcessLookupError):
                self._popen.kill()


class BwrapRunner:
    """Runs containers with bubblewrap; `extra_binds` are host paths bound read-write at the
    same place in every container (a deviation from Kubernetes, for tests that need it)."""

    def __init__(self, bwrap: str | None = None, extra_binds: list[str] | None = None) -> None:
        found = bwrap or shutil.which("bwrap")
        if not found:
            raise RuntimeError("bubblewrap (bwrap) is not installed: apt-get install bubblewrap")
        self._bwrap = found
        self._extra_binds = [str(Path(p).resolve()) for p in extra_binds or []]
        self._top_level = sorted(e for e in os.listdir("/") if e not in _HIDDEN_TOP_LEVEL)
        self._software = _software_in_hidden_dirs()

    def start(self, launch: Launch) -> ContainerProcess:
        mounts = [Mount(p, p, True) for p in self._software]
        mounts += [Mount(p, p, False) for p in self._extra_binds] + [
            Mount(m.host_path, self._canonical(m.container_path), m.read_only)
            for m in launch.mounts
        ]
        mounts.sort(key=lambda m: posixpath.normpath(m.container_path).count("/"))
        workdir = self._canonical(launch.working_dir or "/")
        expanded: set[str] = set()
        for mount in mounts:
            expanded |= self._mount_point(mount.container_path, mounts, is_workdir=False)
        if workdir != "/":
            expanded |= self._mount_point(workdir, mounts, is_workdir=True)
        argv = list(launch.argv)
        if not argv:
            raise StartError("no command given")
        self._resolve(argv[0], launch.env.get("PATH", ""), mounts, workdir)
        args = [
            self._bwrap,
            "--die-with-parent",
            "--unshare-pid",
            "--as-pid-1",
            "--unshare-ipc",
            "--unshare-uts",
            "--hostname",
            launch.pod[:63],
            "--tmpfs",
            "/",
        ]
        for entry in self._top_level:
            self._bind_host("/" + entry, expanded, args)
        args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--ro-bind", "/sys", "/sys"]
        for mount in mounts:
            flag = "--ro-bind" if mount.read_only else "--bind"
            args += [flag, mount.host_path, mount.container_path]
        if workdir != "/":
            host_dir = self._host_path(workdir, mounts)
            if (
                host_dir is None
                or workdir in expanded
                or any(e.startswith(workdir + "/") for e in expanded)
            ):
                args += ["--dir", workdir]
            elif not os.path.isdir(host_dir):
                if _under_writable_mount(workdir, mounts):
                    os.makedirs(host_dir, exist_ok=True)
                else:
                    args += ["--dir", workdir]
        args += ["--chdir", workdir]
        read_fd, write_fd = os.pipe()
        args += ["--info-fd", str(write_fd), "--", *argv]
        try:
            popen = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=launch.env,
                pass_fds=[write_fd],
            )
        finally:
            os.close(write_fd)
        info = b""
        with os.fdopen(read_fd, "rb") as reader:
            info = reader.read()
        child = None  # the host PID of the container's PID 1
        if info.strip():
            try:
                child = int(json.loads(info.decode())["child-pid"])
            except (ValueError, KeyError):
                child = None
        return _BwrapProcess(popen, child)

    # The checks below turn what would be a bwrap setup failure (exit 1, indistinguishable from
    # the command's own exit 1) into the StartError a container runtime reports.

    def _canonical(self, path: str) -> str:
        """The path with the host's symlinks resolved where it runs through host directories
        (`/var/run/x` is `/run/x`), as bwrap would otherwise follow them on the host."""
        path = posixpath.normpath(path)
        first = path.strip("/").split("/")[0]
        if first in self._top_level:
            return os.path.realpath(path)
        return path

    def _mount_point(self, target: str, mounts: list[Mount], *, is_workdir: bool) -> set[str]:
        """Host directories to rebuild on tmpfs so bwrap can create `target` below them."""
        if not posixpath.isabs(target):
            raise StartError(f"mount point {target!r} is not absolute")
        others = [m for m in mounts if posixpath.normpath(m.container_path) != target]
        host = self._host_path(target, others)
        if host is None or os.path.exists(host) or _under_writable_mount(target, others):
            return set()
        if any(
            target.startswith(posixpath.normpath(m.container_path).rstrip("/") + "/")
            for m in others
        ):
            what = "working directory" if is_workdir else "mount point"
            raise StartError(f"cannot create {what} {target!r} inside a read-only volume")
        expanded: set[str] = set()
        current = ""
        for part in target.strip("/").split("/")[:-1]:
            current += "/" + part
            if os.path.isdir(current) and not os.path.islink(current):
                expanded.add(current)
            else:
                break
        return expanded

    def _bind_host(self, path: str, expanded: set[str], args: list[str]) -> None:
        """Bind a host entry read-only; an expanded directory becomes a tmpfs directory holding
        read-only binds of its entries, so new mount points can be made in it."""
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif path in expanded:
            args += ["--dir", path]
            try:
                children = sorted(os.listdir(path))
            except OSError:
                children = []
            for child in children:
                self._bind_host(posixpath.join(path, child), expanded, args)
        elif os.path.exists(path):
            args += ["--ro-bind-try", path, path]

    def _host_path(self, path: str, mounts: list[Mount]) -> str | None:
        """Where `path` of the sandbox is on the host; None when it is on a sandbox tmpfs."""
        path = posixpath.normpath(path)
        best: Mount | None = None
        for mount in mounts:
            target = posixpath.normpath(mount.container_path)
            if (path == target or path.startswith(target.rstrip("/") + "/")) and (
                best is None or len(target) > len(best.container_path)
            ):
                best = mount
        if best is not None:
            rest = posixpath.relpath(path, posixpath.normpath(best.container_path))
            return best.host_path if rest == "." else posixpath.join(best.host_path, rest)
        first = path.strip("/").split("/")[0]
        if not first or first not in self._top_level or first in _HIDDEN_TOP_LEVEL:
            return None
        return path

    def _resolve(self, command: str, search: str, mounts: list[Mount], workdir: str | None) -> None:
        if "/" in command:
            candidates = [posixpath.join(workdir or "/", command)]
        else:
            candidates = [posixpath.join(d, command) for d in search.split(":") if d]
        for candidate in candidates:
            host = self._host_path(candidate, mounts)
            if host is not None and os.path.isfile(host) and os.access(host, os.X_OK):
                return
        if "/" in command:
            raise StartError(f'exec: "{command}": stat {command}: no such file or directory')
        raise StartError(f'exec: "{command}": executable file not found in $PATH')


def _under_writable_mount(path: str, mounts: list[Mount]) -> bool:
    path = posixpath.normpath(path)
    for mount in mounts:
        target = posixpath.normpath(mount.container_path)
        if path.startswith(target.rstrip("/") + "/") and not mount.read_only:
            return True
    return False


def _software_in_hidden_dirs() -> list[str]:
    """The venv and source tree of the running Python when they lie where the sandbox has its own
    file systems (a checkout under /tmp): bound read-only so `tesk` and `python` still run there."""
    import tesk

    candidates = {os.path.realpath(sys.prefix), os.path.realpath(Path(tesk.__file__).parent.parent)}
    return sorted(path for path in candidates if path.strip("/").split("/")[0] in _HIDDEN_TOP_LEVEL)
