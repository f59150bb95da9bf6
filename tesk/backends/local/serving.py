"""The serving process's half of the local backend: THE runner of a data dir, and what it needs.

`start()` takes the data dir's lock (one runner per data dir), chooses the launcher, removes what
a dead runner left, listens for wake-up hints from the API processes and starts the runner
(runner.py); `stop()` undoes it. The composition root builds it, with the stager the engine
stages files through, only in the serving process; API processes never run tasks.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket

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
from tesk.backends.local.wakeup import Listener, deliver, socket_address
from tesk.config import CustomConfig
from tesk.engine.stages import Stager
from tesk.engine.usage import Prices
from tesk.store.base import TaskStore
from tesk.tes.limits import max_runtime
from tesk.tes.models import Task
from tesk.tes.retries import RetryPolicy

logger = logging.getLogger(__name__)


def data_dir_of(config: CustomConfig) -> DataDir:
    return DataDir(config.data_dir.expanduser().resolve())


def wakeup_address(data_dir: DataDir) -> str:
    """Where the runner of `data_dir` listens for hints (API processes send them there)."""
    return socket_address(data_dir.root, data_dir.socket_path)


def runner_id(data_dir: DataDir) -> str:
    """Who runs a task: this host and data dir (a restarted runner finds its tasks by it)."""
    return f"local:{socket.gethostname()}:{data_dir.root}"


class LocalRunner:
    def __init__(
        self,
        config: CustomConfig,
        store: TaskStore,
        *,
        stager: Stager,
        stop_grace_s: float = 5.0,
        poll_interval_s: float = 1.0,
    ) -> None:
        self._config = config
        self._store = store
        self._stager = stager
        self._grace = stop_grace_s
        self._poll = poll_interval_s
        self._data = data_dir_of(config)
        self._address = wakeup_address(self._data)
        self.runner_id = runner_id(self._data)
        self._lock = DataDirLock(self._data.lock_file)
        self._runner: Runner | None = None
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

    # -- hints from the backend in this process (Wakeups) -----------------------------------

    def task_queued(self, task_id: str) -> None:
        # Before start() no runner looks: its first look at the store, at start, finds the task.
        if self._runner is not None:
            self._runner.task_queued(task_id)

    def task_canceling(self, task_id: str) -> None:
        if self._runner is not None:
            self._runner.task_canceling(task_id)

    # -- lifecycle ----------------------------------------------------------------------------

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
        logger.info("local runner %s: executors run with %s", self.runner_id, launcher.name)
        self._remove_leftovers(launcher)

        def make_runtime(task: Task) -> LocalRuntime:
            return LocalRuntime(
                self._data.task(task.id),
                launcher,
                self._stager,
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
            prices=Prices(**self._config.usage.prices.model_dump()),
            retries=RetryPolicy(**self._config.retries.model_dump()),
        )
        # Listen first: a hint sent while the runner settles old tasks is then not lost.
        listener = Listener(self._address, lambda message: deliver(message, runner))
        try:
            listener.start()
        except OSError as exc:
            raise BackendError(f"cannot listen for wake-ups at {self._address!r}: {exc}") from exc
        self._listener = listener
        runner.start()
        self._runner = runner

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
