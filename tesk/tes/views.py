"""The TES views of a task: MINIMAL, BASIC and FULL.

- MINIMAL: `id` and `state` only.
- BASIC: everything except ExecutorLog.stdout/stderr, Input.content and TaskLog.system_logs.
- FULL: everything.

A view holds the fields the client sent and the ones TESK filled in, never echoed defaults.
"""

from __future__ import annotations

from typing import Any

from tesk.tes.models import Task, TaskLog, View
from tesk.tes.states import State


def render(
    view: View, *, task_id: str, state: State, task: Task | None, log: TaskLog | None
) -> dict[str, Any]:
    """The JSON object of one task in `view`. `task` may be None for MINIMAL."""
    if view is View.MINIMAL or task is None:
        return {"id": task_id, "state": state.value}
    document: dict[str, Any] = {"id": task_id, "state": state.value}
    document.update({k: v for k, v in task.dump().items() if k not in ("id", "state", "logs")})
    if log is not None:
        document["logs"] = [log.dump()]
    if view is View.BASIC:
        _strip_to_basic(document)
    return document


def _strip_to_basic(document: dict[str, Any]) -> None:
    for item in document.get("inputs", []):
        item.pop("content", None)
    for log in document.get("logs", []):
        log.pop("system_logs", None)
        for executor_log in log.get("logs", []):
            executor_log.pop("stdout", None)
            executor_log.pop("stderr", None)
