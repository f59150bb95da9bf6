"""How the local runtime starts one executor: the Launcher contract and what its kinds share.

A Launcher turns a LaunchSpec (image, command, directories to bind, stdio files...) into a
running process: `bwrap` sandboxes it on the host's file system, `docker`/`podman` run it in a
container. Executor output always goes straight from the process to files, never through TESK.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import subprocess
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

from tesk.backends.local.logtail import read_tail
from tesk.engine.usage import ExecutorUsage

LABEL_TASK = "io.tesk.task"
LABEL_RUNNER = "io.tesk.runner"

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class LauncherUnavailable(Exception):
    """This launcher cannot start executors here; the message says why."""


class LaunchRefused(Exception):
    """This launcher cannot start this executor (a path it cannot mount...)."""


@dataclass(frozen=True)
class ExecutorUser:
    uid: int
    gid: int

    @classmethod
    def parse(cls, text: str) -> ExecutorUser:
        """`uid[:gid]` as numbers or names; without a group, the user's primary group."""
        user_part, _, group_part = text.partition(":")
        try:
            if user_part.isdigit():
                uid = int(user_part)
                gid = uid
                with contextlib.suppress(KeyError):
                    gid = pwd.getpwuid(uid).pw_gid
            else:
                entry = pwd.getpwnam(user_part)
                uid, gid = entry.pw_uid, entry.pw_gid
            if group_part:
                gid = int(group_part) if group_part.isdigit() else grp.getgrnam(group_part).gr_gid
        except KeyError as exc:
            raise ValueError(f"executor_user {text!r}: unknown user or group") from exc
        if not user_part:
            raise ValueError(f"executor_user {text!r}: expected uid[:gid]")
        return cls(uid, gid)

    def __str__(self) -> str:
        return f"{self.uid}:{self.gid}"


NOBODY = ExecutorUser(65534, 65534)
"""Who executors run as when TESK runs as root and no executor_user is configured."""


def unreachable_for(path: Path, user: ExecutorUser) -> Path | None:
    """The first directory on the way to `path` that `user` cannot enter, if any."""
    for directory in reversed([path, *path.parents]):
        try:
            info = directory.stat()
        except OSError:
            return directory
        if info.st_uid == user.uid:
            bit = 0o100
        elif info.st_gid == user.gid:
            bit = 0o010
        else:
            bit = 0o001
        if not info.st_mode & bit:
            return directory
    return None


@dataclass(frozen=True)
class Bind:
    host: Path
    container: str


@dataclass(frozen=True)
class LaunchSpec:
    """One executor, ready to run. `binds` are read-write; the first is the private /tmp.

    Without `workdir`, the image's working directory is used (/ where there is no image).
    """

    name: str  # unique among running executors; names the container
    image: str
    command: Sequence[str]
    binds: Sequence[Bind]
    stdout: Path
    stderr: Path
    workdir: str | None = None
    stdin: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    cpu_cores: int | None = None
    ram_gb: float | None = None
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """How a launched executor ended.

    `failure` is set when the launcher could not run the command at all (no such image, a mount
    it could not make); `reason` explains an exit beyond its code (killed by a signal).
    """

    exit_code: int
    reason: str | None = None
    failure: str | None = None
    usage: ExecutorUsage | None = None  # measured by launchers that can (None: not measured)


class Launched(Protocol):
    def wait(self) -> Outcome: ...

    def kill(self) -> None:
        """Kill the executor and everything it started; callable from another thread."""


class Launcher(Protocol):
    name: str
    ignores_images: bool
    enforces_resources: bool  # cpu_cores and ram_gb

    def check(self) -> None:
        """Raise LauncherUnavailable when this launcher cannot start executors here."""

    def launch(self, spec: LaunchSpec) -> Launched:
        """Start the executor. Raises LaunchRefused."""

    def remove_leftovers(self, labels: Mapping[str, str]) -> None:
        """Remove what executors of a dead runner left behind (containers with these labels)."""


def spawn(
    argv: Sequence[str],
    spec: LaunchSpec,
    *,
    env: Mapping[str, str],
    user: ExecutorUser | None = None,
    pass_fds: Sequence[int] = (),
) -> subprocess.Popen[bytes]:
    """Start `argv` in a new session with the spec's stdio files.

    A new session makes the process a group leader, so that the whole group can be killed.
    """
    with ExitStack() as files:
        stdin: IO[bytes] | int = subprocess.DEVNULL
        if spec.stdin is not None:
            stdin = files.enter_context(spec.stdin.open("rb"))
        stdout = files.enter_context(spec.stdout.open("wb"))
        stderr = (
            stdout if spec.stderr == spec.stdout else files.enter_context(spec.stderr.open("wb"))
        )
        switch = user is not None and (user.uid, user.gid) != (os.geteuid(), os.getegid())
        return subprocess.Popen(
            list(argv),
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            env=dict(env),
            start_new_session=True,
            close_fds=True,
            pass_fds=tuple(pass_fds),
            user=user.uid if switch and user else None,
            group=user.gid if switch and user else None,
            extra_groups=[] if switch else None,
        )


def last_lines(path: Path, count: int, limit: int = 4096) -> list[str]:
    """The last non-empty lines of a (possibly huge) log file."""
    lines = [line.strip() for line in read_tail(path, limit).splitlines()]
    return [line for line in lines if line][-count:]
