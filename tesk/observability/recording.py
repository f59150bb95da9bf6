"""What TESK records about its work, independent of where the records go.

Code that does the work (the store wrapper, the filer stage wrapper, the request hooks) calls a
Recorder; the composition root decides which one: Prometheus metrics (tesk.observability.
prometheus) or nothing. This module imports no metrics library, so any layer may use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

Direction = Literal["inputs", "outputs"]


@dataclass(frozen=True)
class TaskEnded:
    """A task reached a final state.

    run_s: from the engine's start to the end (None when no engine ever started it);
    exit_codes: of every executor that ran, in order.
    """

    state: str
    run_s: float | None = None
    exit_codes: Sequence[int] = field(default_factory=tuple)
    owner: str | None = None
    # What the task used as its log's usage.* metadata says (None: not measured).
    cpu_seconds: float | None = None
    bytes_staged_in: int | None = None
    bytes_staged_out: int | None = None


class Recorder(Protocol):
    def task_created(self) -> None: ...

    def task_started(self, queue_wait_s: float, owner: str | None = None) -> None:
        """A task of `owner` left QUEUED for an engine, after `queue_wait_s` seconds in the
        queue."""

    def task_ended(self, ended: TaskEnded) -> None: ...

    def attempt_retried(self, reason: str) -> None:
        """An attempt of a task ended and the task was queued again (reason: its Cause)."""

    def transferred(self, direction: Direction, scheme: str, files: int, size: int) -> None:
        """The filer moved `files` files of `size` bytes in total from/to `scheme` URLs."""

    def transfer_failed(self, direction: Direction, count: int = 1) -> None:
        """`count` inputs or outputs could not be staged."""

    def request_handled(self, operation: str, method: str, status: int, seconds: float) -> None:
        """The API answered a request (operation: the TES operationId, or the route's name)."""


class NullRecorder:
    """Records nothing (metrics disabled)."""

    def task_created(self) -> None:
        return None

    def task_started(self, queue_wait_s: float, owner: str | None = None) -> None:
        return None

    def task_ended(self, ended: TaskEnded) -> None:
        return None

    def attempt_retried(self, reason: str) -> None:
        return None

    def transferred(self, direction: Direction, scheme: str, files: int, size: int) -> None:
        return None

    def transfer_failed(self, direction: Direction, count: int = 1) -> None:
        return None

    def request_handled(self, operation: str, method: str, status: int, seconds: float) -> None:
        return None
