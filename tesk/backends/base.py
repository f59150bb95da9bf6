"""The ComputeBackend contract. The service never asks which backend it talks to.

Reconciling what the store believes with what really runs is each backend's own background
work, started with `start()` in the serving process (the local runner's recovery, sweeps and
orphan checks; the Kubernetes reconciler's watches and resyncs): nothing outside a backend knows
when it is due, so the contract has no call for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, Protocol

from tesk.store.base import TaskRecord
from tesk.tes.models import Executor, Task
from tesk.tes.states import State

OutputStream = Literal["stdout", "stderr"]


class BackendError(Exception):
    """The backend could not accept or stop a task; the message says why (no credentials)."""


class ExecutorOutput(Protocol):
    """What one executor has written to stdout or stderr so far, where it runs (live).

    The API's follower polls it (tesk/logs): every call returns at once with what is there, never
    waits for more. Calls come from one thread at a time.
    """

    def available(self) -> bool:
        """Whether the live output can be read now (the executor started and it is not gone)."""

    def size(self) -> int:
        """How many bytes the executor has written so far (0 when not available)."""

    def read(self, offset: int, limit: int) -> bytes:
        """Up to `limit` bytes from `offset` (b"": nothing more yet, or not available)."""

    def complete(self) -> bool:
        """Whether the source itself knows that no more output will come (False: unknown)."""

    def close(self) -> None:
        """Release what the source holds (open files, connections)."""


class ComputeBackend(Protocol):
    def submit(self, record: TaskRecord) -> None:
        """Start the engine for a stored QUEUED task somewhere. Raises BackendError."""

    def cancel(self, task_id: str, previous_state: State) -> None:
        """Tear down everything of a task that was just stored as CANCELING.

        `previous_state` is the state it was in before. The backend moves the task to CANCELED once
        nothing of it is left (possibly later, from its own loop).
        """

    def supported_backend_parameters(self) -> Sequence[str]:
        """The `resources.backend_parameters` keys this backend understands (lower case)."""

    def check_backend_parameters(self, parameters: Mapping[str, str]) -> None:
        """Raise ValueError with a message when a supported key has an unusable value."""

    def check_task(self, task: Task) -> None:
        """Raise ValueError naming the field when this backend could never run the task."""

    def executor_output(
        self,
        task_id: str,
        index: int,
        executor: Executor,
        stream: OutputStream,
        attempt: int = 1,
    ) -> ExecutorOutput | None:
        """The live `stream` of executor `index` of the task's `attempt` (None: none to show;
        the API then serves the tail the ExecutorLog kept). Must not block for long: API workers
        call it for every request of an executor's output."""

    def start(self) -> None:
        """Start background work (runner, reconciler) in the serving process; API processes
        never call it."""

    def stop(self) -> None: ...
