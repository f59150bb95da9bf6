"""The local ComputeBackend: tasks run on this machine, with the data dir as their storage.

Its own work is small: submit and cancel write to the store and send the runner a hint. Where
the hint goes is what the composition root gives it. An API process gets `for_api`: hints by
datagram to the runner's socket, and nothing to start. The serving process gets `serving`: the
backend holds THE runner of the data dir (serving.py), hints go to it directly, and `start()` /
`stop()` run it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tesk.backends.base import BackendError, ExecutorOutput, OutputStream
from tesk.backends.local.layout import DataDir
from tesk.backends.local.output import FileOutput, output_path
from tesk.backends.local.serving import LocalRunner, data_dir_of, wakeup_address
from tesk.backends.local.wakeup import SocketWakeups, Wakeups
from tesk.config import CustomConfig
from tesk.store.base import TaskRecord, TaskStore
from tesk.tes.limits import MAX_RUNTIME, max_runtime
from tesk.tes.models import Executor, Task
from tesk.tes.progress import Progress
from tesk.tes.states import State


class LocalBackend:
    def __init__(
        self,
        store: TaskStore,
        wakeups: Wakeups,
        data_dir: DataDir,
        *,
        runner: LocalRunner | None = None,
    ) -> None:
        self._store = store
        self._wakeups = wakeups
        self._data = data_dir
        self._runner = runner

    @classmethod
    def for_api(cls, config: CustomConfig, store: TaskStore) -> LocalBackend:
        """The backend of an API process: it reaches the runner of the data dir by datagram."""
        data_dir = data_dir_of(config)
        return cls(store, SocketWakeups(wakeup_address(data_dir)), data_dir)

    @classmethod
    def serving(cls, runner: LocalRunner, store: TaskStore) -> LocalBackend:
        """The backend of the serving process, which runs `runner` and hints it directly."""
        return cls(store, runner, runner.data_dir, runner=runner)

    def submit(self, record: TaskRecord) -> None:
        self._wakeups.task_queued(record.id)

    def cancel(self, task_id: str, previous_state: State) -> None:
        if previous_state == State.QUEUED:
            # Never claimed (a claim needs QUEUED), so nothing runs: done at once.
            self._store.update(task_id, Progress(State.CANCELED), expected={State.CANCELING})
            return
        self._wakeups.task_canceling(task_id)

    def supported_backend_parameters(self) -> Sequence[str]:
        return (MAX_RUNTIME,)

    def check_task(self, task: Task) -> None:
        """Launchers take what they are given; their own errors say what is wrong."""

    def check_backend_parameters(self, parameters: Mapping[str, str]) -> None:
        max_runtime(parameters)

    def executor_output(
        self,
        task_id: str,
        index: int,
        executor: Executor,
        stream: OutputStream,
        attempt: int = 1,
    ) -> ExecutorOutput | None:
        try:
            task_dir = self._data.task(task_id)
            path = output_path(task_dir, index, executor, stream)
        except ValueError:
            return None  # an id or path no task of this machine can have
        return FileOutput(path, task_dir.root)

    def start(self) -> None:
        if self._runner is None:
            raise BackendError("this local backend only submits; the serving process runs tasks")
        self._runner.start()

    def stop(self) -> None:
        if self._runner is not None:
            self._runner.stop()
