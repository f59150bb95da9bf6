"""The local ComputeBackend: tasks run on this machine, with the data dir as their storage.

Every API process builds one and calls only submit/cancel/backend-parameter checks: those just
write to the store or send a wake-up. The serving process calls `start()` once, which starts THE
runner of the data dir (see runner.py); `stop()` ends it.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
from collections.abc import Mapping, Sequence

from tesk.backends.base import BackendError
from tesk.backends.local.choose import choose_launcher
from tesk.backends.local.launcher import (
    LABEL_RUNNER,
    LABEL_TASK,
    NOBODY,
    ExecutorUser,
    Launcher,
    LauncherUnavailable,
    unreachable_for,
)
from tesk.backends.local.layout import DataDir
from tesk.backends.local.lock import DataDirBusy, DataDirLock
from tesk.backends.local.runner import Runner
from tesk.backends.local.runtime import LocalRuntime
from tesk.backends.local.wakeup import Listener, send, socket_address
from tesk.config import CustomConfig, FilerConfig
from tesk.engine.stages import Stager
from tesk.observability.recording import recorder
from tesk.observability.stager import ObservedStager
from tesk.store.base import TaskRecord, TaskStore
from tesk.tes.limits import MAX_RUNTIME, max_runtime
from tesk.tes.models import Task
from tesk.tes.progress import Progress
from tesk.tes.states import State

logger = logging.getLogger(__name__)


def runner_id(data_dir: DataDir) -> str:
    """Who runs a task: this host and data dir (a restarted runner finds its tasks by it)."""
    return f"local:{socket.gethostname()}:{data_dir.root}"


def default_stager(config: FilerConfig) -> Stager:
    # Imported when the runner starts: API processes never stage anything.
    from tesk.filer import Filer

    # Files, bytes and failures of every stage reach the metrics of this process.
    return ObservedStager(Filer(config), recorder())


class LocalBackend:
    def __init__(
        self,
        config: CustomConfig,
        store: TaskStore,
        *,
        stager: Stager | None = None,
        stop_grace_s: float = 5.0,
        poll_interval_s: float = 1.0,
    ) -> None:
        self._config = config
        self._store = store
        self._stager = stager
        self._grace = stop_grace_s
        self._poll = poll_interval_s
        self._data = DataDir(config.data_dir.expanduser().resolve())
        self._address = socket_address(self._data.root, self._data.socket_path)
        self.runner_id = runner_id(self._data)
        self._lock = DataDirLock(self._data.lock_file)
        self._runner: Runner | None = None
        self._runner_pid: int | None = None
        self._listener: Listener | None = None
        self._launcher: Launcher | None = None
        self._user = (
            ExecutorUser.parse(config.local.executor_user) if config.local.executor_user else None
        )

    @property
    def data_dir(self) -> DataDir:
        return self._data

    @property
    def launcher(self) -> Launcher | None:
        """The launcher that starts executors (docker, podman or bwrap), once started."""
        return self._launcher

    # -- API side: called in every API process ------------------------------------------------

    def submit(self, record: TaskRecord) -> None:
        self._notify(f"wake {record.id}")

    def cancel(self, task_id: str, previous_state: State) -> None:
        if previous_state == State.QUEUED:
            # Never claimed (a claim needs QUEUED), so nothing runs: done at once.
            self._store.update(task_id, Progress(State.CANCELED), expected={State.CANCELING})
            return
        self._notify(f"cancel {task_id}")

    def reconcile(self) -> None:
        runner = self._local_runner()
        if runner is not None:
            runner.wake()

    def supported_backend_parameters(self) -> Sequence[str]:
        return (MAX_RUNTIME,)

    def check_task(self, task: Task) -> None:
        """Launchers take what they are given; their own errors say what is wrong."""

    def check_backend_parameters(self, parameters: Mapping[str, str]) -> None:
        max_runtime(parameters)

    def _notify(self, message: str) -> None:
        runner = self._local_runner()
        if runner is not None:
            runner.wake()
        else:
            send(self._address, message)

    def _local_runner(self) -> Runner | None:
        """The runner, if it runs in this process (a forked copy of this object has no threads)."""
        return self._runner if self._runner_pid == os.getpid() else None

    # -- the serving process ------------------------------------------------------------------

    def start(self) -> None:
        if self._runner is not None:
            return
        try:
            self._lock.acquire()
        except DataDirBusy as exc:
            raise BackendError(str(exc)) from exc
        try:
            self._start_runner()
        except BaseException:
            if self._listener is not None:
                self._listener.close()
                self._listener = None
            self._lock.release()
            raise

    def _start_runner(self) -> None:
        launcher = self._unprivileged_launcher()
        if launcher is None:
            try:
                launcher = choose_launcher(self._config.local, hidden=[self._data.root])
            except LauncherUnavailable as exc:
                raise BackendError(str(exc)) from exc
        self._launcher = launcher
        stager = self._stager or default_stager(self._config.filer)
        logger.info("local runner %s: executors run with %s", self.runner_id, launcher.name)
        self._remove_leftovers(launcher)

        def make_runtime(task: Task) -> LocalRuntime:
            return LocalRuntime(
                self._data.task(task.id),
                launcher,
                stager,
                labels={LABEL_RUNNER: self.runner_id, LABEL_TASK: task.id or ""},
                log_tail_bytes=self._config.limits.log_tail_bytes,
                user=self._user,
                max_runtime_s=max_runtime(
                    task.resources.backend_parameters if task.resources else None,
                    self._config.limits.max_runtime_seconds,
                ),
            )

        runner = Runner(
            self._store,
            make_runtime,
            runner_id=self.runner_id,
            max_concurrent=self._config.local.max_concurrent_tasks,
            poll_interval_s=self._poll,
        )
        # Listen first: a wake-up sent while the runner settles old tasks is then not lost.
        listener = Listener(self._address, lambda _message: runner.wake())
        try:
            listener.start()
        except OSError as exc:
            raise BackendError(f"cannot listen for wake-ups at {self._address!r}: {exc}") from exc
        self._listener = listener
        runner.start()
        self._runner = runner
        self._runner_pid = os.getpid()

    def _unprivileged_launcher(self) -> Launcher | None:
        """As root without a configured executor_user: a launcher running executors as nobody.

        None (executors then run as root, with a warning) where that cannot work: the data dir
        is not reachable by nobody, or the runtime cannot run executors as another user.
        """
        if self._user is not None or os.geteuid() != 0:
            return None
        blocked = unreachable_for(self._data.root, NOBODY)
        problem = f"{blocked} is not traversable by uid {NOBODY.uid}" if blocked else None
        if problem is None:
            local = self._config.local.model_copy(update={"executor_user": str(NOBODY)})
            try:
                launcher = choose_launcher(local, hidden=[self._data.root])
            except LauncherUnavailable as exc:
                problem = str(exc)
            else:
                self._user = NOBODY
                logger.info("executors run as uid %s (TESK runs as root)", NOBODY)
                return launcher
        logger.warning(
            "executors run as root: they cannot run as uid %s here (%s); set "
            "local.executor_user to an unprivileged uid:gid",
            NOBODY.uid,
            problem,
        )
        return None

    def _remove_leftovers(self, launcher: Launcher) -> None:
        """What a dead runner of this data dir left: its containers and task directories.

        Holding the lock, this runner is the only one of the data dir, and it runs nothing yet.
        """
        launcher.remove_leftovers({LABEL_RUNNER: self.runner_id})
        if self._data.tasks.is_dir():
            for leftover in self._data.tasks.iterdir():
                logger.info("removing the leftover task directory %s", leftover)
                shutil.rmtree(leftover, ignore_errors=True)

    def stop(self) -> None:
        """Take no more tasks; running ones get the grace period, then end SYSTEM_ERROR."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self._runner is not None:
            self._runner.stop(self._grace)
            self._runner = None
        self._lock.release()
