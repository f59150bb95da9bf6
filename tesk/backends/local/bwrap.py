"""Executors in a bubblewrap sandbox: the host's programs, read-only, without containers.

The sandbox's root is a tmpfs holding read-only binds of the host's top-level entries (symlinks
such as /bin -> usr/bin recreated), so that task paths which do not exist on the host (/data)
can still be created. It gets its own /proc, a minimal /dev, a private writable /tmp, the task's
mount points bound read-write, and a tmpfs over TESK's data dir so that no other task's files are
visible. Its processes live in their own PID namespace and die with the runner (SIGKILL of the
sandbox's init takes every process with it). Images are ignored.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import shutil
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from tesk.backends.local.launcher import (
    DEFAULT_PATH,
    ExecutorUser,
    LauncherUnavailable,
    LaunchRefused,
    LaunchSpec,
    Outcome,
    last_lines,
    spawn,
)
from tesk.backends.local.proctable import kill_with
from tesk.engine.volumes import within

# Top-level entries the sandbox provides itself instead of binding the host's.
_OWN_ENTRIES = frozenset({"proc", "dev", "tmp"})


class BwrapLauncher:
    name = "bwrap"
    ignores_images = True
    enforces_resources = False

    def __init__(
        self,
        *,
        network: bool = True,
        hidden: Sequence[Path] = (),
        user: ExecutorUser | None = None,
        binary: str = "bwrap",
    ) -> None:
        self._network = network
        self._hidden = [str(p) for p in hidden]
        self._user = user
        self._binary = binary

    def check(self) -> None:
        path = shutil.which(self._binary)
        if path is None:
            raise LauncherUnavailable(f"{self._binary} is not installed")
        self._binary = path
        # The namespaces and privileges of a real sandbox, on the plain host file system.
        probe = [path, *self._isolation(), "--dev-bind", "/", "/", "true"]
        user = self._switch_to()
        try:
            result = subprocess.run(
                probe,
                capture_output=True,
                timeout=10,
                check=False,
                user=user.uid if user else None,
                group=user.gid if user else None,
                extra_groups=[] if user else None,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise LauncherUnavailable(f"{path} cannot be run: {exc}") from exc
        if result.returncode != 0:
            message = result.stderr.decode(errors="replace").strip()
            raise LauncherUnavailable(f"{path} cannot create a sandbox here: {message}")

    def _switch_to(self) -> ExecutorUser | None:
        user = self._user
        if user is None or (user.uid, user.gid) == (os.geteuid(), os.getegid()):
            return None
        return user

    def launch(self, spec: LaunchSpec) -> BwrapProcess:
        for bind in spec.binds:
            problem = self._mount_problem(bind.container)
            if problem:
                raise LaunchRefused(problem)
        workdir = _unbound_workdir(spec)
        if workdir:
            problem = self._host_tree_problem(workdir)
            if problem:
                raise LaunchRefused(f"workdir: {problem}")
        env = {"PATH": DEFAULT_PATH, "HOME": "/tmp", **spec.env}
        status_read, status_write = os.pipe()
        try:
            process = spawn(
                self.argv(spec, status_write),
                spec,
                env=env,
                user=self._user,
                pass_fds=(status_write,),
            )
        except BaseException:
            os.close(status_read)
            raise
        finally:
            os.close(status_write)
        token = _token("--hostname") + _token(spec.name)[1:]
        return BwrapProcess(process, status_read, spec.stderr, token)

    def argv(self, spec: LaunchSpec, status_fd: int) -> list[str]:
        # The environment reaches the command through bwrap's own (not on its command line,
        # which every local user can read).
        args = [
            self._binary,
            *self._isolation(),
            "--hostname",
            spec.name,
            "--json-status-fd",
            str(status_fd),
            "--tmpfs",
            "/",
        ]
        for entry in sorted(os.listdir("/")):
            if entry in _OWN_ENTRIES:
                continue
            host = "/" + entry
            if os.path.islink(host):
                args += ["--symlink", os.readlink(host), host]
            elif os.path.isdir(host) or os.path.isfile(host):
                args += ["--ro-bind", host, host]
        args += ["--proc", "/proc", "--dev", "/dev"]
        for hidden in self._hidden:
            if os.path.isdir(hidden) and not within(hidden, "/tmp"):
                args += ["--tmpfs", hidden]
        for bind in spec.binds:
            args += ["--bind", str(bind.host), bind.container]
        workdir = _unbound_workdir(spec)
        if workdir:
            # Docker creates a missing working directory in the container; here it goes into
            # the sandbox's own root (a directory of the host is left as it is).
            args += ["--dir", workdir]
        args += ["--chdir", spec.workdir or "/", "--", *spec.command]
        return args

    def _isolation(self) -> list[str]:
        args = [
            "--die-with-parent",
            "--new-session",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--cap-drop",
            "ALL",
        ]
        if not self._network:
            args.append("--unshare-net")
        return args

    def _mount_problem(self, path: str) -> str | None:
        """Why `path` cannot be a bind target in the sandbox, if it cannot."""
        path = posixpath.normpath(path)
        if path == "/":
            return "the task volume cannot be mounted at / with the bwrap runtime"
        top = path.split("/")[1]
        if top in ("proc", "dev"):
            return f"{path} lies in /{top}, which the sandbox provides itself"
        return self._host_tree_problem(path)

    def _host_tree_problem(self, path: str) -> str | None:
        """Why the directory `path` (normalised) cannot be made in the sandbox, if it cannot."""
        top = path.split("/")[1]
        if top in ("", "tmp") or any(within(path, hidden) for hidden in self._hidden):
            return None
        host_top = "/" + top
        if not os.path.lexists(host_top) or os.path.isdir(path):
            return None
        return (
            f"the bwrap runtime cannot create {path}: {host_top} is the host's and read-only in "
            "the sandbox; use a path under /tmp or under a top-level directory the host lacks"
        )

    def remove_leftovers(self, labels: Mapping[str, str]) -> None:
        """Kill sandboxes of a dead runner of this data dir that outlived it.

        They normally die with it (--die-with-parent), but bwrap arms that only some way into
        its start: a runner killed right then leaves the sandbox running. Every sandbox hides
        the data dir, so its command line names it.
        """
        for hidden in self._hidden:
            kill_with(_token("--tmpfs") + _token(hidden)[1:])


def _unbound_workdir(spec: LaunchSpec) -> str | None:
    """The executor's working directory unless it lies on a bind (the runtime made those)."""
    if not spec.workdir:
        return None
    workdir = posixpath.normpath(spec.workdir)
    if any(within(workdir, posixpath.normpath(b.container)) for b in spec.binds):
        return None
    return workdir


def _token(argument: str) -> bytes:
    """An exact command-line argument, as it appears in /proc/<pid>/cmdline."""
    return b"\0" + os.fsencode(argument) + b"\0"


class BwrapProcess:
    def __init__(
        self, process: subprocess.Popen[bytes], status_fd: int, stderr: Path, token: bytes
    ) -> None:
        self._process = process
        self._status_fd = status_fd
        self._stderr = stderr
        self._token = token  # an argument only this sandbox's command line holds
        self._killed = False

    @property
    def pid(self) -> int:
        return self._process.pid

    def wait(self) -> Outcome:
        returncode = self._process.wait()
        if self._killed:
            kill_with(self._token)
        status = self._read_status()
        code = status.get("exit-code")
        if isinstance(code, int):
            return Outcome(code)
        if returncode < 0:
            return Outcome(128 - returncode, reason=f"killed by signal {-returncode}")
        # bwrap itself failed before or while starting the command; its last words say why.
        message = next(
            (line for line in reversed(last_lines(self._stderr, 5)) if line.startswith("bwrap:")),
            f"bwrap exited with code {returncode} before the command ran",
        )
        if message.startswith("bwrap: execvp"):
            # The command was not found or not executable: the task's fault, as with docker.
            code = 126 if "Permission denied" in message else 127
            return Outcome(code, reason=message.removeprefix("bwrap: "))
        return Outcome(returncode, failure=message.removeprefix("bwrap: "))

    def _read_status(self) -> dict[str, object]:
        os.set_blocking(self._status_fd, False)
        chunks: list[bytes] = []
        try:
            while True:
                try:
                    chunk = os.read(self._status_fd, 65536)
                except BlockingIOError:
                    break
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            os.close(self._status_fd)
        status: dict[str, object] = {}
        for line in b"".join(chunks).decode(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                value = json.loads(line)
                if isinstance(value, dict):
                    status.update(value)
        return status

    def kill(self) -> None:
        # bwrap leads its own process group; the sandbox's init (a fork of bwrap, with the same
        # command line, in its own session) normally dies with it (--die-with-parent) and takes
        # the rest of its PID namespace along. Killing it by its command line covers a cancel
        # that comes before bwrap armed --die-with-parent.
        self._killed = True
        if self._process.returncode is None:  # once reaped, its pid may be someone else's
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._process.pid, signal.SIGKILL)
        kill_with(self._token)
