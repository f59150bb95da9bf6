"""Progress snapshots as the taskmaster writes them into its status ConfigMap.

A ConfigMap holds at most 1 MiB. A snapshot carries every executor's stdout/stderr tail, so a task
with many executors could exceed that: the tails are then shortened (keeping their ends, as a tail
does) until the snapshot fits, and a system log line says so. The store keeps what arrives.
"""

from __future__ import annotations

import json
from typing import Any

from tesk.tes.models import FileType, TaskLog
from tesk.tes.progress import Progress
from tesk.tes.states import State

FORMAT = 1
MAX_SNAPSHOT_BYTES = 900 * 1024  # below the 1 MiB of a ConfigMap, leaving room for metadata
SHORTENED_NOTE = "executor stdout/stderr tails were shortened to fit the task's status ConfigMap"


class SnapshotError(ValueError):
    """A status ConfigMap that does not hold a snapshot this TESK understands."""


def encode(progress: Progress, max_bytes: int = MAX_SNAPSHOT_BYTES) -> str:
    if progress.seq is None:
        raise ValueError("only engine snapshots (with a sequence number) are written")
    document = _document(progress, progress.log)
    text = json.dumps(document, separators=(",", ":"))
    if len(text.encode()) <= max_bytes or progress.log is None:
        return text
    return _shortened(progress, progress.log, max_bytes)


def decode(text: str) -> Progress:
    try:
        document = json.loads(text)
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise SnapshotError(f"not a format {FORMAT} snapshot")
        log = document.get("log")
        types = document.get("input_types")
        return Progress(
            state=State(document["state"]),
            seq=int(document["seq"]),
            log=TaskLog.model_validate(log) if log is not None else None,
            input_types=tuple(FileType(t) for t in types) if types is not None else None,
        )
    except SnapshotError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise SnapshotError(f"unreadable progress snapshot: {exc}") from None


def _document(progress: Progress, log: TaskLog | None) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "seq": progress.seq,
        "state": progress.state.value,
        "log": log.dump() if log is not None else None,
        "input_types": (
            [t.value for t in progress.input_types] if progress.input_types is not None else None
        ),
    }


def _shortened(progress: Progress, log: TaskLog, max_bytes: int) -> str:
    limit = max(
        (len((entry.stdout or "").encode()) for entry in log.logs),
        default=0,
    )
    limit = max(limit, max((len((entry.stderr or "").encode()) for entry in log.logs), default=0))
    while True:
        limit //= 2
        trimmed = log.model_copy(deep=True)
        for entry in trimmed.logs:
            entry.stdout = _tail(entry.stdout, limit)
            entry.stderr = _tail(entry.stderr, limit)
        notes = list(trimmed.system_logs or [])
        if SHORTENED_NOTE not in notes:
            trimmed.system_logs = [*notes, SHORTENED_NOTE]
        text = json.dumps(_document(progress, trimmed), separators=(",", ":"))
        if len(text.encode()) <= max_bytes or limit == 0:
            return text


def _tail(text: str | None, limit: int) -> str | None:
    if text is None:
        return None
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[len(data) - limit :].decode(errors="ignore")
