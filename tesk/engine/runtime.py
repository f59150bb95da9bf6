"""What the engine needs from the place it runs tasks in (a local runtime, Kubernetes pods)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from tesk.engine.cancellation import Cancellation
from tesk.engine.stages import InputsStaged, OutputsStaged
from tesk.engine.usage import ExecutorUsage
from tesk.tes.models import Executor, Resources, Task
from tesk.tes.progress import Progress


@dataclass(frozen=True)
class ExecutorResult:
    exit_code: int
    stdout_tail: str
    stderr_tail: str
    start_time: str
    end_time: str
    reason: str | None = None  # why it failed beyond the exit code (OOM-killed, timed out, ...)
    system_logs: tuple[str, ...] = ()  # notes for the task's system_logs (e.g. "image ignored")
    usage: ExecutorUsage | None = None  # what its processes used, where the runtime measures it
    timed_out: bool = False  # stopped for running longer than the task's run-time limit


class RuntimeFailure(Exception):
    """The runtime could not run the task at all (no such image, a volume it cannot create).

    The engine ends the attempt SYSTEM_ERROR, which the retry policy retries only when
    `retries.system_errors` is set."""


class CapacityLost(Exception):
    """The runtime lost what the task ran on (an evicted pod, a lost node, spot capacity
    reclaimed): the engine ends the attempt PREEMPTED, and the retry policy may run it again."""


Preempted = CapacityLost
"""The name CapacityLost had first."""


class Runtime(Protocol):
    """Every step that can take long gets the task's cancellation: once it is cancelled, the
    step stops what runs (kills the executor, ends the transfer) and returns or raises at once."""

    def prepare(self, task: Task) -> None:
        """Create the task's working volume."""

    def stage_inputs(self, task: Task, cancel: Cancellation) -> InputsStaged:
        """Run the input stage. Raises StageError."""

    def run_executor(
        self,
        task: Task,
        index: int,
        executor: Executor,
        resources: Resources | None,
        cancel: Cancellation,
    ) -> ExecutorResult:
        """Run one executor to completion. Raises RuntimeFailure or CapacityLost."""

    def stage_outputs(
        self, task: Task, executors_failed: bool, cancel: Cancellation
    ) -> OutputsStaged:
        """Run the output stage. With `executors_failed`, missing outputs are no error."""

    def cleanup(self) -> None:
        """Remove the working volume and everything else the task used."""


class ProgressReporter(Protocol):
    def report(self, progress: Progress) -> None:
        """Deliver a progress snapshot (to the store, to a status ConfigMap, ...)."""
