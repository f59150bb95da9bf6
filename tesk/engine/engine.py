"""THE task engine: stage inputs, run the executors in order, stage outputs, report progress.

Every backend runs this same engine; backends only decide where it runs (a thread of the local
runner, a taskmaster Job on Kubernetes) and hand it a Runtime and a ProgressReporter. Each report
is a cumulative snapshot with a sequence number one higher than the last, so a lost report is
made good by the next one and the store's reducer ignores stale or duplicated ones.

No user command is run twice by the engine: a failed executor ends the task (or is recorded and
skipped with `ignore_error`), it is never retried. An attempt whose capacity was lost (the runtime
raises CapacityLost) ends PREEMPTED, and one the runtime could not run (RuntimeFailure)
SYSTEM_ERROR; the final report says why (Progress.failure), and the retry policy the backend
applies it with may then queue the task again as a new attempt, run by a new engine.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from tesk.engine.cancellation import Cancellation, Cancelled
from tesk.engine.runtime import (
    CapacityLost,
    ExecutorResult,
    ProgressReporter,
    Runtime,
    RuntimeFailure,
)
from tesk.engine.stages import StageError
from tesk.engine.usage import Prices, UsageMeter
from tesk.tes.events import RUNNING_EXECUTOR, RUNNING_EXECUTOR_START
from tesk.tes.models import ExecutorLog, FileType, Task, TaskLog, timestamp
from tesk.tes.progress import AttemptFailure, Cause, Progress
from tesk.tes.states import State

logger = logging.getLogger(__name__)

# Pauses between attempts to deliver the final report: it is the one report nothing later repairs.
FINAL_REPORT_BACKOFF_S: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0)


class TaskEngine:
    """Runs one task from INITIALIZING to its final state. Use once: `run()`."""

    def __init__(
        self,
        task: Task,
        runtime: Runtime,
        reporter: ProgressReporter,
        cancel: Cancellation,
        *,
        initial_log: TaskLog | None = None,
        first_seq: int = 1,
        attempt: int = 1,
        prices: Prices | None = None,
        final_report_backoff_s: Sequence[float] = FINAL_REPORT_BACKOFF_S,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not task.id:
            raise ValueError("the engine needs a stored task (one with an id)")
        if first_seq < 1:
            raise ValueError(f"first_seq must be at least 1, not {first_seq}")
        self._task = task
        self._runtime = runtime
        self._reporter = reporter
        self._cancel = cancel
        self._next_seq = first_seq
        self._attempt = attempt
        self._failure: AttemptFailure | None = None
        self._final_backoff = tuple(final_report_backoff_s)
        self._sleep = sleep
        # Warnings recorded at create (e.g. ignored backend parameters) stay in every snapshot.
        self._log = initial_log.model_copy(deep=True) if initial_log is not None else TaskLog()
        self._log.logs = []
        self._log.outputs = []
        self._input_types: tuple[FileType, ...] | None = None
        hourly = prices.hourly(task.resources) if prices is not None else None
        self._usage = UsageMeter.starting_now(task.creation_time, hourly)
        self._phase = "starting"

    @property
    def task_id(self) -> str:
        return self._task.id or ""

    def run(self) -> State:
        """Run the task to its end and return the final state reported. Never raises."""
        self._log.start_time = timestamp()
        try:
            state = self._run_phases()
        except Cancelled:
            state = State.CANCELED
        except CapacityLost as exc:
            state = self._lost(exc, f"lost its capacity while {self._phase}: {exc}")
        except RuntimeFailure as exc:
            state = self._not_run(exc, f"{self._phase} failed: {exc}")
        except Exception as exc:
            state = self._internal_error(exc)
        self._cleanup()
        # A cancel that arrives while the task winds down still wins: the task is stored as
        # CANCELING by then, and CANCELED is the only state it may still take.
        if self._cancel.requested:
            state = State.CANCELED
        self._log.end_time = timestamp()
        self._usage.end()
        self._report_final(state)
        return state

    def _run_phases(self) -> State:
        task = self._task
        self._cancel.check()
        self._emit(State.INITIALIZING)
        self._phase = "preparing the task volume"
        self._runtime.prepare(task)
        self._cancel.check()
        self._phase = "staging inputs"
        try:
            staged = self._runtime.stage_inputs(task, self._cancel)
        except StageError as exc:
            self._cancel.check()
            self._note(f"input staging failed: {exc}")
            return State.SYSTEM_ERROR
        self._cancel.check()
        self._input_types = tuple(staged.input_types)
        self._usage.staged_in(staged.files, staged.bytes)
        self._emit(State.RUNNING)
        executors_failed = False
        last = len(task.executors) - 1
        for index, executor in enumerate(task.executors):
            self._cancel.check()
            self._phase = f"running executor {index}"
            self._announce_running(index)
            try:
                result = self._runtime.run_executor(
                    task, index, executor, task.resources, self._cancel
                )
            except RuntimeFailure as exc:
                self._cancel.check()
                return self._not_run(exc, f"executor {index} could not be run: {exc}")
            except CapacityLost as exc:
                self._cancel.check()
                return self._lost(exc, f"executor {index} lost its capacity (preempted): {exc}")
            finally:
                self._announce_running(None)
            self._cancel.check()
            self._record(index, result)
            if result.timed_out:
                # A limit bounds the task, whatever ignore_error says of the command's failures.
                self._note(f"executor {index} ran longer than the task's run-time limit")
                executors_failed = True
                self._emit(State.RUNNING)
                break
            if result.exit_code != 0:
                if executor.ignore_error:
                    self._note(
                        f"executor {index} exited with code {result.exit_code}; "
                        "ignore_error is set, so the task goes on"
                    )
                else:
                    skipped = "" if index == last else "; the executors after it were not run"
                    self._note(f"executor {index} exited with code {result.exit_code}{skipped}")
                    executors_failed = True
                    self._emit(State.RUNNING)
                    break
            self._emit(State.RUNNING)
        self._phase = "staging outputs"
        return self._stage_outputs(executors_failed)

    def _stage_outputs(self, executors_failed: bool) -> State:
        failed_state = State.EXECUTOR_ERROR if executors_failed else State.SYSTEM_ERROR
        try:
            staged = self._runtime.stage_outputs(self._task, executors_failed, self._cancel)
        except StageError as exc:
            self._cancel.check()
            self._note(f"output staging failed: {exc}")
            return failed_state
        self._cancel.check()
        self._log.outputs = list(staged.outputs)
        self._usage.staged_out(staged.outputs)
        for error in staged.errors:
            self._note(f"output not uploaded: {error}")
        if executors_failed or staged.errors:
            return failed_state
        return State.COMPLETE

    def _announce_running(self, index: int | None) -> None:
        """Name the executor that starts now in the log's metadata, and report it, so that
        GetTask and the task's events show it while it runs (its ExecutorLog, which TES requires
        to carry an exit code, comes once it ended); None: no executor runs."""
        metadata = dict(self._log.metadata or {})
        metadata.pop(RUNNING_EXECUTOR, None)
        metadata.pop(RUNNING_EXECUTOR_START, None)
        if index is not None:
            metadata[RUNNING_EXECUTOR] = str(index)
            metadata[RUNNING_EXECUTOR_START] = timestamp()
        self._log.metadata = metadata
        if index is not None:
            self._emit(State.RUNNING)

    def _record(self, index: int, result: ExecutorResult) -> None:
        self._log.logs.append(
            ExecutorLog(
                start_time=result.start_time,
                end_time=result.end_time,
                stdout=result.stdout_tail,
                stderr=result.stderr_tail,
                exit_code=result.exit_code,
            )
        )
        self._usage.executor(index, result.usage)
        for line in result.system_logs:
            self._note(line)
        if result.reason:
            self._note(f"executor {index}: {result.reason}")

    def _lost(self, exc: CapacityLost, line: str) -> State:
        if self._cancel.requested:
            return State.CANCELED
        self._note(line)
        self._failure = AttemptFailure(Cause.CAPACITY_LOST, str(exc))
        return State.PREEMPTED

    def _not_run(self, exc: RuntimeFailure, line: str) -> State:
        if self._cancel.requested:
            return State.CANCELED
        self._note(line)
        self._failure = AttemptFailure(Cause.SYSTEM_ERROR, str(exc))
        return State.SYSTEM_ERROR

    def _internal_error(self, exc: Exception) -> State:
        if self._cancel.requested:
            # Killing the task's processes may make the runtime fail; that is the cancel's doing.
            return State.CANCELED
        logger.exception("task %s: internal error while %s", self.task_id, self._phase)
        self._note(f"internal error while {self._phase}: {type(exc).__name__}: {exc}")
        return State.SYSTEM_ERROR

    def _cleanup(self) -> None:
        try:
            self._runtime.cleanup()
        except Exception as exc:
            logger.exception("task %s: cleanup failed", self.task_id)
            self._note(f"cleaning up the task's resources failed: {type(exc).__name__}: {exc}")

    def _note(self, line: str) -> None:
        lines = self._log.system_logs or []
        if line not in lines:
            self._log.system_logs = [*lines, line]

    def _progress(self, state: State) -> Progress:
        seq = self._next_seq
        self._next_seq += 1
        self._log.metadata = {**(self._log.metadata or {}), **self._usage.metadata()}
        return Progress(
            state=state,
            seq=seq,
            log=self._log.model_copy(deep=True),
            input_types=self._input_types,
            attempt=self._attempt,
            # Only the attempt's end says why it ended (a cancel while winding down wins).
            failure=self._failure if state in (State.PREEMPTED, State.SYSTEM_ERROR) else None,
        )

    def _emit(self, state: State) -> None:
        progress = self._progress(state)
        try:
            self._reporter.report(progress)
        except Exception:
            # The next snapshot carries everything this one did.
            logger.warning(
                "task %s: progress report %d (%s) failed",
                self.task_id,
                progress.seq,
                state,
                exc_info=True,
            )

    def _report_final(self, state: State) -> None:
        progress = self._progress(state)
        for attempt, pause in enumerate((*self._final_backoff, None), start=1):
            try:
                self._reporter.report(progress)
                return
            except Exception:
                logger.warning(
                    "task %s: final report (%s) failed, attempt %d",
                    self.task_id,
                    state,
                    attempt,
                    exc_info=True,
                )
            if pause is not None:
                self._sleep(pause)
        logger.error("task %s: the final state %s could not be reported", self.task_id, state)
