"""What the Runtime contract does with any runtime: one task, start to cleanup."""

from __future__ import annotations

from tesk.taskmaster.runtime import ExecutorResult, Runtime
from tesk.tes.models import Task


def run_task(runtime: Runtime, task: Task) -> list[ExecutorResult]:
    """Prepare, stage the inputs, run every executor; clean up whatever happened."""
    runtime.prepare(task)
    runtime.stage_inputs(task)
    try:
        return [
            runtime.run_executor(task, i, e, task.resources) for i, e in enumerate(task.executors)
        ]
    finally:
        runtime.cleanup()
