"""The Runtime of one task on this machine: a directory as volume, in-process filer stages,
executors started by a Launcher (bwrap, docker or podman)."""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

from tesk.backends.local.launcher import (
    Bind,
    ExecutorUser,
    Launched,
    Launcher,
    LaunchRefused,
    LaunchSpec,
)
from tesk.backends.local.layout import TaskDir, check_task_id
from tesk.backends.local.logtail import read_tail
from tesk.engine.cancellation import Cancellation
from tesk.engine.runtime import ExecutorResult, RuntimeFailure
from tesk.engine.stages import InputsStaged, OutputsStaged, Stager
from tesk.engine.volumes import host_path, mount_points, within
from tesk.tes.models import Executor, Resources, Task, timestamp


class LocalRuntime:
    def __init__(
        self,
        task_dir: TaskDir,
        launcher: Launcher,
        stager: Stager,
        *,
        labels: Mapping[str, str] | None = None,
        log_tail_bytes: int = 64 * 1024,
        user: ExecutorUser | None = None,
        max_runtime_s: int | None = None,
    ) -> None:
        self._dir = task_dir
        self._launcher = launcher
        self._stager = stager
        self._labels = dict(labels or {})
        self._tail_bytes = log_tail_bytes
        self._user = user
        self._max_runtime = max_runtime_s
        self._mounts: list[str] = []
        self._noted = False

    @property
    def volume(self) -> Path:
        return self._dir.volume

    def prepare(self, task: Task) -> None:
        check_task_id(task.id)
        self._mounts = mount_points(task)
        # Traversable, not listable: an unprivileged sandbox must reach its bind sources.
        for directory in (self._dir.root.parent, self._dir.root):
            directory.mkdir(parents=True, exist_ok=True)
            directory.chmod(0o711)
        self._dir.volume.mkdir(exist_ok=True)
        self._dir.logs.mkdir(exist_ok=True)
        for point in self._mounts:
            self._host(point).mkdir(parents=True, exist_ok=True)

    def stage_inputs(self, task: Task, cancel: Cancellation) -> InputsStaged:
        staged = self._stager.stage_inputs(task, self._dir.volume, cancel)
        if self._user is not None:
            _chown_tree(self._dir.volume, self._user)
        return staged

    def run_executor(
        self,
        task: Task,
        index: int,
        executor: Executor,
        resources: Resources | None,
        cancel: Cancellation,
    ) -> ExecutorResult:
        spec = self._spec(task, index, executor, resources)
        start = timestamp()
        cancel.check()
        try:
            launched = self._launcher.launch(spec)
        except LaunchRefused as exc:
            raise RuntimeFailure(str(exc)) from exc
        except OSError as exc:
            raise RuntimeFailure(f"{self._launcher.name} could not be started: {exc}") from exc
        # A cancel kills the executor's processes; the wait then returns at once.
        with cancel.on_cancel(launched.kill), _time_limit(self._max_runtime, launched) as limit:
            outcome = launched.wait()
        cancel.check()
        end = timestamp()
        if outcome.failure is not None:
            raise RuntimeFailure(f"{self._launcher.name}: {outcome.failure}")
        return ExecutorResult(
            exit_code=outcome.exit_code,
            stdout_tail=read_tail(spec.stdout, self._tail_bytes),
            stderr_tail=read_tail(spec.stderr, self._tail_bytes),
            start_time=start,
            end_time=end,
            reason=limit.reason if limit.reached else outcome.reason,
            system_logs=self._runtime_notes(task),
            usage=outcome.usage,
            timed_out=limit.reached,
        )

    def stage_outputs(
        self, task: Task, executors_failed: bool, cancel: Cancellation
    ) -> OutputsStaged:
        return self._stager.stage_outputs(task, self._dir.volume, executors_failed, cancel)

    def cleanup(self) -> None:
        shutil.rmtree(self._dir.root, ignore_errors=True)
        if self._dir.root.exists():
            shutil.rmtree(self._dir.root)  # says why it cannot

    def _host(self, path: str) -> Path:
        try:
            return host_path(self._dir.volume, path)
        except ValueError as exc:
            raise RuntimeFailure(str(exc)) from exc

    def _spec(
        self, task: Task, index: int, executor: Executor, resources: Resources | None
    ) -> LaunchSpec:
        tmp = self._dir.tmp(index)
        try:
            tmp.mkdir(parents=True, exist_ok=True)
            tmp.parent.chmod(0o711)
            tmp.chmod(0o1777)
            workdir = executor.workdir
            if workdir:
                self._make_workdir(workdir, tmp)
            stdout = self._stream(executor.stdout, f"{index}.stdout")
            stderr = self._stream(executor.stderr, f"{index}.stderr")
        except OSError as exc:
            raise RuntimeFailure(f"executor {index}: {exc}") from exc
        stdin = None
        if executor.stdin:
            stdin = self._host(executor.stdin)
            if not stdin.is_file():
                raise RuntimeFailure(f"stdin {executor.stdin} is not a file in the task volume")
        binds = [Bind(tmp, "/tmp"), *(Bind(self._host(p), p) for p in self._mounts)]
        return LaunchSpec(
            name=f"tesk-{task.id}-{index}",
            image=executor.image,
            command=list(executor.command),
            binds=binds,
            workdir=workdir,
            stdout=stdout,
            stderr=stderr,
            stdin=stdin,
            env=dict(executor.env or {}),
            cpu_cores=resources.cpu_cores if resources else None,
            ram_gb=resources.ram_gb if resources else None,
            labels=self._labels,
        )

    def _make_workdir(self, workdir: str, tmp: Path) -> None:
        """Create a working directory that lies on the task's own storage (as docker would)."""
        target: Path | None = None
        if any(within(workdir, point) for point in self._mounts):
            target = self._host(workdir)
        elif within(workdir, "/tmp"):
            target = tmp / os.path.relpath(workdir, "/tmp")
        if target is None or target.is_dir():
            return
        created = target
        while not created.parent.exists():
            created = created.parent
        target.mkdir(parents=True, exist_ok=True)
        if self._user is not None:
            _chown_tree(created, self._user)

    def _stream(self, tes_path: str | None, fallback: str) -> Path:
        if not tes_path:
            return self._dir.logs / fallback
        path = self._host(tes_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def _runtime_notes(self, task: Task) -> tuple[str, ...]:
        """What this runtime does not do that the task may expect; said once per task."""
        if self._noted:
            return ()
        self._noted = True
        notes: list[str] = []
        name = self._launcher.name
        if self._launcher.ignores_images:
            images = ", ".join(sorted({e.image for e in task.executors}))
            notes.append(
                f"the {name} runtime ignores container images ({images}): executors run the "
                "host's programs, with the host's file system read-only"
            )
        resources = task.resources
        if (
            not self._launcher.enforces_resources
            and resources is not None
            and (resources.cpu_cores or resources.ram_gb)
        ):
            notes.append(f"the {name} runtime does not enforce cpu_cores and ram_gb limits")
        return tuple(notes)


class _Limit:
    """Whether the run-time limit stopped the executor, and what to say of it."""

    def __init__(self, seconds: int | None) -> None:
        self.seconds = seconds
        self.reached = False

    @property
    def reason(self) -> str:
        return f"ran longer than its limit of {self.seconds} s and was stopped"


@contextlib.contextmanager
def _time_limit(seconds: int | None, launched: Launched) -> Iterator[_Limit]:
    """Within the block, kill `launched` once it has run `seconds` (no limit: None)."""
    limit = _Limit(seconds)
    if seconds is None:
        yield limit
        return

    def stop() -> None:
        limit.reached = True
        launched.kill()

    timer = threading.Timer(seconds, stop)
    timer.daemon = True
    timer.start()
    try:
        yield limit
    finally:
        timer.cancel()


def _chown_tree(root: Path, user: ExecutorUser) -> None:
    os.chown(root, user.uid, user.gid)
    for directory, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            os.chown(os.path.join(directory, name), user.uid, user.gid, follow_symlinks=False)
