"""Executors in a bubblewrap sandbox: the host's programs, read-only, without containers.

The sandbox's root is a tmpfs holding read-only binds of the host's entries (sandbox_root.py says
how a task path inside a host directory, such as /var/lib/cwl/x, is made there without writing
the host). It gets its own /proc, a minimal /dev, a private writable /tmp, the task's mount
points bound read-write, and a tmpfs over TESK's data dir so that no other task's files are
visible; everything else is read-only. Its processes live in their own PID namespace and die
with the runner (SIGKILL of the sandbox's init takes every process with it). Images are ignored.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import logging
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
    unreachable_for,
)
from tesk.backends.local.proctable import kill_with
from tesk.backends.local.sandbox_root import (
    PathRefused,
    directory_to_open,
    resolve,
    root_arguments,
)
from tesk.engine.usage import ExecutorUsage
from tesk.engine.volumes import within

logger = logging.getLogger(__name__)

_PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>

# Top-level entries the sandbox provides itself instead of binding the host's.
_OWN_ENTRIES = frozenset({"proc", "dev", "tmp"})
_KERNEL_TREES = ("/proc", "/dev")


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
        _adopt_orphans()
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
        """The bwrap command line of one executor. Raises LaunchRefused."""
        # The environment reaches the command through bwrap's own (not on its command line,
        # which every local user can read).
        return [
            self._binary,
            *self._isolation(),
            "--hostname",
            spec.name,
            "--json-status-fd",
            str(status_fd),
            *self._file_system(spec),
            "--chdir",
            spec.workdir or "/",
            "--",
            *spec.command,
        ]

    def _file_system(self, spec: LaunchSpec) -> list[str]:
        hidden = [h for h in self._hidden if os.path.isdir(h) and not within(h, "/tmp")]
        # Below these the host's directories and symlinks are not what the sandbox shows.
        own = [*_KERNEL_TREES, "/tmp", *hidden]
        opened: set[str] = set()
        binds: list[tuple[str, str]] = []
        for bind in spec.binds:
            target = self._bind_target(bind.container, own)
            if not any(within(target, directory) for directory in own):
                opened.update(_opened_for(target))
            binds.append((str(bind.host), target))
        targets = [target for _, target in binds]
        workdir = self._workdir_arguments(spec, own, opened)
        args = root_arguments(opened, _OWN_ENTRIES, self._can_enter)
        args += ["--proc", "/proc", "--dev", "/dev"]
        for directory in hidden:
            args += ["--tmpfs", directory]
        args += workdir
        for host, target in sorted(binds, key=lambda bind: bind[1]):  # outer before inner
            args += ["--bind", host, target]
        # Last: the root tmpfs and the opened directories are not the task's to write (unless
        # a mount point covers one: a remount would hit the task's bind on top of it).
        args += ["--remount-ro", "/"]
        for directory in sorted(opened):
            if not any(within(directory, target) for target in targets):
                args += ["--remount-ro", directory]
        return args

    def _bind_target(self, path: str, own: Sequence[str]) -> str:
        """Where the mount point `path` is made in the sandbox. Raises LaunchRefused."""
        path = posixpath.normpath(path)
        if path == "/":
            raise LaunchRefused("the task volume cannot be mounted at / with the bwrap runtime")
        try:
            target = resolve(path, own)
        except PathRefused as exc:
            raise LaunchRefused(str(exc)) from exc
        for tree in _KERNEL_TREES:
            if within(target, tree):
                raise LaunchRefused(f"{path} lies in {tree}, which the sandbox provides itself")
        return target

    def _workdir_arguments(
        self, spec: LaunchSpec, own: Sequence[str], opened: set[str]
    ) -> list[str]:
        """Make a working directory that lies on no mount point, as Docker makes a missing one.

        A directory of the host is used as it is (read-only); a new one is a tmpfs of its own,
        writable like the directory a container engine creates in the container.
        """
        workdir = _unbound_workdir(spec)
        if not workdir:
            return []
        try:
            place = resolve(workdir, own)
        except PathRefused as exc:
            raise LaunchRefused(f"workdir: {exc}") from exc
        if any(within(place, tree) for tree in _KERNEL_TREES) or os.path.isdir(place):
            return []
        if any(within(place, directory) for directory in own):
            return ["--dir", place]  # in a tmpfs of the sandbox already
        opened.update(_opened_for(place, "workdir: "))
        return ["--tmpfs", place]

    def _can_enter(self, directory: str) -> bool:
        """Whether bwrap, as the user it runs as, can reach the entries of a host directory."""
        user = self._switch_to()
        if user is None:
            return os.access(directory, os.X_OK)
        return unreachable_for(Path(directory), user) is None

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

    def remove_leftovers(self, labels: Mapping[str, str]) -> None:
        """Kill sandboxes of a dead runner of this data dir that outlived it.

        They normally die with it (--die-with-parent), but bwrap arms that only some way into
        its start: a runner killed right then leaves the sandbox running. Every sandbox hides
        the data dir, so its command line names it.
        """
        for hidden in self._hidden:
            kill_with(_token("--tmpfs") + _token(hidden)[1:])


def _opened_for(target: str, what: str = "") -> set[str]:
    """The host directory to open for `target`, if any (as a set, to update others with)."""
    try:
        directory = directory_to_open(target)
    except PathRefused as exc:
        raise LaunchRefused(f"{what}{exc}") from exc
    return {directory} if directory else set()


def _unbound_workdir(spec: LaunchSpec) -> str | None:
    """The executor's working directory unless it lies on a bind (the runtime made those)."""
    if not spec.workdir:
        return None
    workdir = posixpath.normpath(spec.workdir)
    if any(within(workdir, posixpath.normpath(b.container)) for b in spec.binds):
        return None
    return workdir


@functools.cache
def _adopt_orphans() -> None:
    """Make this process the reaper of its orphaned descendants (once; Linux only).

    With its own PID namespace, bwrap's outer process learns the exit status from the sandbox's
    init and exits without waiting for it, so the CPU time and peak memory of the executor (which
    the init waited for) never reach TESK. As a child subreaper, TESK adopts the init when bwrap
    exits and reaps it itself (see _reap_init).
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        logger.info("executor usage is not measured: prctl(PR_SET_CHILD_SUBREAPER) failed")


def _reap_init(pid: object) -> ExecutorUsage | None:
    """What the sandbox's init and everything it waited for used; None if it is not ours."""
    if not isinstance(pid, int) or pid <= 0:
        return None
    try:
        _pid, _status, rusage = os.wait4(pid, 0)
    except ChildProcessError:
        return None  # not adopted (no subreaper here), or reaped already
    return ExecutorUsage(
        cpu_seconds=rusage.ru_utime + rusage.ru_stime,
        peak_memory_bytes=rusage.ru_maxrss * 1024,  # Linux counts KiB
    )


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
        usage = _reap_init(status.get("child-pid"))
        code = status.get("exit-code")
        if isinstance(code, int):
            return Outcome(code, usage=usage)
        if returncode < 0:
            return Outcome(128 - returncode, reason=f"killed by signal {-returncode}", usage=usage)
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
