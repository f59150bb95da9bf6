"""A scripted Runtime for engine tests: records every call, can fail, block or be cancelled."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tesk.engine.cancellation import Cancellation
from tesk.engine.runtime import ExecutorResult, RuntimeFailure
from tesk.engine.stages import InputsStaged, OutputsStaged, StageError
from tesk.engine.usage import ExecutorUsage
from tesk.tes.models import Executor, FileType, OutputFileLog, Resources, Task, timestamp

BLOCK = "block"
"""A step scripted as BLOCK waits until the task is cancelled (a long-running executor, stage...);
the cancel is recorded as the call "cancel", as a runtime's kill would be."""


@dataclass(frozen=True)
class Run:
    """What one executor run does."""

    exit_code: int = 0
    stdout: str = ""
    stderr: str = ""
    reason: str | None = None
    system_logs: tuple[str, ...] = ()
    usage: ExecutorUsage | None = None
    timed_out: bool = False


@dataclass
class FakeRuntime:
    executors: Sequence[Run | Exception | str] = ()
    input_types: tuple[FileType, ...] = ()
    inputs_counted: tuple[int, int] = (0, 0)  # (files, bytes) the input stage reports
    inputs: Exception | str | None = None  # StageError to raise, or BLOCK
    prepare_error: Exception | None = None
    outputs: tuple[OutputFileLog, ...] = ()
    output_errors: tuple[str, ...] = ()
    outputs_raise: Exception | str | None = None
    cleanup_error: Exception | None = None
    on_call: Callable[[str], None] | None = None  # runs after a call is recorded
    calls: list[str] = field(default_factory=list)
    blocked: threading.Event = field(default_factory=threading.Event)

    def _enter(self, name: str) -> None:
        self.calls.append(name)
        if self.on_call is not None:
            self.on_call(name)

    def _block(self, cancel: Cancellation) -> None:
        stopped = threading.Event()
        with cancel.on_cancel(lambda: (self.calls.append("cancel"), stopped.set())):
            self.blocked.set()
            if not stopped.wait(30):
                raise AssertionError("a blocked fake runtime step was never cancelled")

    def prepare(self, task: Task) -> None:
        self._enter("prepare")
        if self.prepare_error is not None:
            raise self.prepare_error

    def stage_inputs(self, task: Task, cancel: Cancellation) -> InputsStaged:
        self._enter("stage_inputs")
        if self.inputs == BLOCK:
            self._block(cancel)
            raise StageError("input staging interrupted")
        if isinstance(self.inputs, Exception):
            raise self.inputs
        return InputsStaged(self.input_types, (self.inputs_counted,))

    def run_executor(
        self,
        task: Task,
        index: int,
        executor: Executor,
        resources: Resources | None,
        cancel: Cancellation,
    ) -> ExecutorResult:
        self._enter(f"run_executor:{index}")
        script = self.executors[index] if index < len(self.executors) else Run()
        start = timestamp()
        if script == BLOCK:
            self._block(cancel)
            return ExecutorResult(137, "", "", start, timestamp(), reason="killed")
        if isinstance(script, Exception):
            raise script
        if not isinstance(script, Run):
            raise AssertionError(f"bad script {script!r}")
        return ExecutorResult(
            script.exit_code,
            script.stdout,
            script.stderr,
            start,
            timestamp(),
            reason=script.reason,
            system_logs=script.system_logs,
            usage=script.usage,
            timed_out=script.timed_out,
        )

    def stage_outputs(
        self, task: Task, executors_failed: bool, cancel: Cancellation
    ) -> OutputsStaged:
        self._enter(f"stage_outputs:failed={executors_failed}")
        if self.outputs_raise == BLOCK:
            self._block(cancel)
            raise StageError("output staging interrupted")
        if isinstance(self.outputs_raise, Exception):
            raise self.outputs_raise
        return OutputsStaged(self.outputs, self.output_errors)

    def cleanup(self) -> None:
        self._enter("cleanup")
        if self.cleanup_error is not None:
            raise self.cleanup_error


__all__ = ["BLOCK", "FakeRuntime", "Run", "RuntimeFailure", "StageError"]
