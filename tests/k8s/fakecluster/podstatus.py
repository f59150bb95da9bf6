"""Container runs and the container statuses the kubelet reports for them."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .logs import ContainerLog
from .meta import Obj, timestamp
from .runner import ContainerProcess


@dataclass
class ContainerRun:
    """One run of one container."""

    name: str
    spec: Obj
    log: ContainerLog
    process: ContainerProcess | None  # None when simulated (scripted Exit) or failed to start
    started: float  # time.monotonic()
    started_at: str
    simulated_code: int | None = None
    start_error: str | None = None
    pump: threading.Thread | None = None
    termination_file: Path | None = None
    forced_reason: str | None = None  # OOMKilled, ...
    exit_code: int | None = None
    done: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def terminated_state(run: ContainerRun, pod_uid: str) -> Obj:
    """The `terminated` state of a finished run."""
    code = run.exit_code if run.exit_code is not None else 0
    if run.forced_reason:
        reason = run.forced_reason
    elif run.start_error is not None:
        reason = "StartError"
    else:
        reason = "Completed" if code == 0 else "Error"
    state: Obj = {
        "exitCode": code,
        "reason": reason,
        "startedAt": run.started_at if run.start_error is None else "1970-01-01T00:00:00Z",
        "finishedAt": run.extra.get("finished_at", timestamp()),
        "containerID": f"fakecluster://{pod_uid}/{run.name}",
    }
    message = run.start_error or _termination_message(run, code)
    if message:
        state["message"] = message
    return {"terminated": state}


def _termination_message(run: ContainerRun, code: int) -> str | None:
    """The container's termination-message file, or its last log lines on error if asked."""
    if run.termination_file is not None and run.termination_file.exists():
        text = run.termination_file.read_bytes()[:4096].decode(errors="replace")
        if text:
            return text
    if code != 0 and run.spec.get("terminationMessagePolicy") == "FallbackToLogsOnError":
        lines = run.log.text().splitlines(keepends=True)[-80:]
        return b"".join(lines)[-2048:].decode(errors="replace")
    return None


def container_status(
    container: Obj,
    run: ContainerRun | None,
    pod_uid: str,
    *,
    waiting: tuple[str, str | None] | None,
    restart_count: int,
    last_state: Obj | None,
) -> Obj:
    """A containerStatuses entry as the kubelet writes it."""
    name = container["name"]
    status: Obj = {
        "name": name,
        "image": container.get("image", ""),
        "imageID": "",
        "ready": False,
        "restartCount": restart_count,
        "started": False,
    }
    if waiting is not None:
        reason, message = waiting
        state: Obj = {"waiting": {"reason": reason}}
        if message:
            state["waiting"]["message"] = message
        status["state"] = state
    elif run is not None and run.done:
        status["state"] = terminated_state(run, pod_uid)
        status["containerID"] = f"fakecluster://{pod_uid}/{name}"
        status["imageID"] = f"{container.get('image', '')}@sha256:{'0' * 64}"
    elif run is not None:
        status["state"] = {"running": {"startedAt": run.started_at}}
        status["ready"] = True
        status["started"] = True
        status["containerID"] = f"fakecluster://{pod_uid}/{name}"
        status["imageID"] = f"{container.get('image', '')}@sha256:{'0' * 64}"
    else:
        status["state"] = {"waiting": {"reason": "ContainerCreating"}}
    status["lastState"] = last_state or {}
    return status
