"""A ComputeBackend that records what the service asks of it, for unit tests."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence

from tesk.backends.base import BackendError, ExecutorOutput, OutputStream
from tesk.store.base import TaskRecord
from tesk.tes.models import Executor, Task
from tesk.tes.states import State


class FakeBackend:
    def __init__(
        self,
        supported: Sequence[str] = (),
        *,
        check: Callable[[Mapping[str, str]], None] | None = None,
        fail_submit: str | None = None,
        fail_cancel: str | None = None,
        refuse_task: str | None = None,
    ) -> None:
        self.refuse_task = refuse_task
        self.supported = list(supported)
        self.check = check
        self.fail_submit = fail_submit
        self.fail_cancel = fail_cancel
        self.submitted: list[TaskRecord] = []
        self.cancelled: list[tuple[str, State]] = []
        self.checked: list[dict[str, str]] = []
        self.started = 0
        self.stopped = 0
        self._lock = threading.Lock()
        # (task id, index, stream) -> what the executor wrote; absent: not started (or gone)
        self.outputs: dict[tuple[str, int, str], FakeOutput] = {}
        self.live_outputs = True  # False: a backend without live output (executor_output None)

    def submit(self, record: TaskRecord) -> None:
        with self._lock:
            self.submitted.append(record)
        if self.fail_submit is not None:
            raise BackendError(self.fail_submit)

    def cancel(self, task_id: str, previous_state: State) -> None:
        with self._lock:
            self.cancelled.append((task_id, previous_state))
        if self.fail_cancel is not None:
            raise BackendError(self.fail_cancel)

    def supported_backend_parameters(self) -> Sequence[str]:
        return list(self.supported)

    def check_backend_parameters(self, parameters: Mapping[str, str]) -> None:
        self.checked.append(dict(parameters))
        if self.check is not None:
            self.check(parameters)

    def check_task(self, task: Task) -> None:
        if self.refuse_task is not None:
            raise ValueError(self.refuse_task)

    def executor_output(
        self,
        task_id: str,
        index: int,
        executor: Executor,
        stream: OutputStream,
        attempt: int = 1,
    ) -> ExecutorOutput | None:
        if not self.live_outputs:
            return None
        return self.outputs.setdefault((task_id, index, stream), FakeOutput())

    def start(self) -> None:
        self.started += 1

    def stop(self) -> None:
        self.stopped += 1


class FakeOutput:
    """An ExecutorOutput in memory: `write` appends, `gone` makes it unavailable."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.started = False
        self.gone = False
        self.ended = False
        self.closed = 0

    def write(self, data: bytes) -> None:
        self.started = True
        self.data += data

    def available(self) -> bool:
        return self.started and not self.gone

    def size(self) -> int:
        return len(self.data) if self.available() else 0

    def read(self, offset: int, limit: int) -> bytes:
        if not self.available():
            return b""
        return bytes(self.data[offset : offset + limit])

    def complete(self) -> bool:
        return self.ended

    def close(self) -> None:
        self.closed += 1
