"""What the Runtime contract does with any runtime: one task, start to cleanup."""

from __future__ import annotations

from tesk.engine.cancellation import Cancellation
from tesk.engine.runtime import ExecutorResult, Runtime
from tesk.tes.models import Task


def run_task(runtime: Runtime, task: Task) -> list[ExecutorResult]:
    """Prepare, stage the inputs, run every executor; clean up whatever happened."""
    cancel = Cancellation()
    runtime.prepare(task)
    runtime.stage_inputs(task, cancel)
    try:
        return [
            runtime.run_executor(task, i, e, task.resources, cancel)
            for i, e in enumerate(task.executors)
        ]
    finally:
        runtime.cleanup()
