"""A ComputeBackend that records what the service asks of it, for unit tests."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence

from tesk.backends.base import BackendError
from tesk.store.base import TaskRecord
from tesk.tes.models import Task
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

    def start(self) -> None:
        self.started += 1

    def stop(self) -> None:
        self.stopped += 1
