"""THE retry policy: whether an attempt that ended is run again as a new attempt.

An attempt that lost its capacity (PREEMPTED: an evicted pod, a lost node, a local runner that
died) is retried while the task has attempts left; one that could not be run at all
(SYSTEM_ERROR from the runtime or the infrastructure) only when `retries.system_errors` says so.
A user command that ran and failed (EXECUTOR_ERROR) is never retried, nor a cancelled task.

Both backends hand this policy to the store's update (`retries=`), which decides and requeues in
the same compare-and-set: the ended attempt's TaskLog is archived with a line saying why it was
retried and the task is QUEUED again, so no client ever sees the attempt's end in between.

A task may lower its number of attempts with the backend parameter `max_attempts` (a whole
number from 1 to `retries.max_attempts`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tesk.tes.limits import whole_number
from tesk.tes.models import Task
from tesk.tes.progress import AttemptFailure, Cause, Progress
from tesk.tes.states import State

MAX_ATTEMPTS = "max_attempts"

_RETRIED_STATES = {Cause.CAPACITY_LOST: State.PREEMPTED, Cause.SYSTEM_ERROR: State.SYSTEM_ERROR}
_WHAT_HAPPENED = {
    Cause.CAPACITY_LOST: "lost its capacity",
    Cause.SYSTEM_ERROR: "could not be run",
}


@dataclass(frozen=True)
class RetryPolicy:
    """max_attempts: how many attempts a task gets at most (1: none is retried);
    system_errors: whether infrastructure SYSTEM_ERRORs are retried too."""

    max_attempts: int = 1
    system_errors: bool = False

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {self.max_attempts}")

    def parse_max_attempts(self, value: str) -> int:
        """The number of attempts `value` asks for; ValueError naming the key and the bound."""
        attempts = whole_number(MAX_ATTEMPTS, value)
        if attempts > self.max_attempts:
            raise ValueError(
                f"{MAX_ATTEMPTS}: {value!r} is more than this service allows: a whole number "
                f"from 1 to {self.max_attempts} (retries.max_attempts)"
            )
        return attempts

    def check_backend_parameters(self, parameters: Mapping[str, str] | None) -> None:
        """Raise ValueError when `parameters` set max_attempts wrong (keys are case-insensitive)."""
        value = _max_attempts_value(parameters)
        if value is not None:
            self.parse_max_attempts(value)

    def attempts_for(self, task: Task) -> int:
        """How many attempts `task` gets: its max_attempts, never more than the service's."""
        value = _max_attempts_value(task.resources.backend_parameters if task.resources else None)
        if value is None:
            return self.max_attempts
        try:
            return self.parse_max_attempts(value)
        except ValueError:  # checked at create: only a lowered retries.max_attempts gets here
            return self.max_attempts

    def retry(
        self, task: Task, attempt: int, ended: State, failure: AttemptFailure | None
    ) -> str | None:
        """The line for attempt `attempt`'s system_logs when it is retried, or None: it is not.

        `ended` is the state the attempt ended in, `failure` why (from its report).
        """
        if failure is None or _RETRIED_STATES[failure.cause] != ended:
            return None
        if failure.cause is Cause.SYSTEM_ERROR and not self.system_errors:
            return None
        if attempt >= self.attempts_for(task):
            return None
        return (
            f"attempt {attempt} {_WHAT_HAPPENED[failure.cause]} ({failure.detail}); "
            f"retried as attempt {attempt + 1}"
        )


def retried(progress: Progress, state_after: State) -> bool:
    """Whether applying `progress` retried its attempt: it ended it, yet the task is QUEUED."""
    return state_after == State.QUEUED and progress.state != State.QUEUED


def _max_attempts_value(parameters: Mapping[str, str] | None) -> str | None:
    for key, value in (parameters or {}).items():
        if key.lower() == MAX_ATTEMPTS:
            return value
    return None
