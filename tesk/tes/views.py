"""The TES views of a task: MINIMAL, BASIC and FULL.

- MINIMAL: `id` and `state` only.
- BASIC: everything except ExecutorLog.stdout/stderr, Input.content and TaskLog.system_logs.
- FULL: everything.

`logs` holds one TaskLog per attempt, oldest first: the attempts that were retried, then the
current one (TES: "in the case where a task fails and is retried, an entry will be appended").

A view holds the fields the client sent and the ones TESK filled in, never echoed defaults.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tesk.tes.models import Task, TaskLog, View
from tesk.tes.states import State


def render(
    view: View,
    *,
    task_id: str,
    state: State,
    task: Task | None,
    log: TaskLog | None,
    attempts: Sequence[TaskLog] = (),
) -> dict[str, Any]:
    """The JSON object of one task in `view`. `task` may be None for MINIMAL."""
    if view is View.MINIMAL or task is None:
        return {"id": task_id, "state": state.value}
    dumped_log = log.dump() if log is not None else None
    return render_document(
        view,
        task_id=task_id,
        state=state,
        task=task.dump(),
        log=dumped_log,
        attempts=[earlier.dump() for earlier in attempts],
    )


def render_document(
    view: View,
    *,
    task_id: str,
    state: State,
    task: dict[str, Any] | None,
    log: dict[str, Any] | None,
    attempts: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """`render` for documents already dumped (as the store keeps them): no models involved.

    The result may share parts with `task`, `log` and `attempts` (the TaskLogs of the earlier
    attempts), and BASIC removes fields from them: pass documents decoded for this response only.
    """
    if view is View.MINIMAL or task is None:
        return {"id": task_id, "state": state.value}
    document: dict[str, Any] = {"id": task_id, "state": state.value}
    document.update({k: v for k, v in task.items() if k not in ("id", "state", "logs")})
    logs = [*(attempts or []), *([log] if log is not None else [])]
    if logs:
        document["logs"] = logs
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
