"""Progress snapshots as the taskmaster writes them into its status ConfigMap.

A ConfigMap holds at most 1 MiB. A snapshot carries every executor's stdout/stderr tail, every
uploaded output file and every system log line, so a task could exceed that: the tails are then
shortened (keeping their ends, as a tail does) until the snapshot fits; if that is not enough,
fewer output files and then fewer system log lines are listed. A system log line says what was
left out. The store keeps what arrives.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from tesk.tes.models import FileType, TaskLog
from tesk.tes.progress import AttemptFailure, Cause, Progress
from tesk.tes.states import State

FORMAT = 1
MAX_SNAPSHOT_BYTES = 900 * 1024  # below the 1 MiB of a ConfigMap, leaving room for metadata
SHORTENED_NOTE = "executor stdout/stderr tails were shortened to fit the task's status ConfigMap"
OUTPUTS_NOTE = (
    "only the first {kept} of the {total} uploaded output files are listed, to fit the task's "
    "status ConfigMap"
)
LINES_NOTE = "{left} system log lines were left out to fit the task's status ConfigMap"

T = TypeVar("T")


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
        attempt = document.get("attempt")
        failure = document.get("failure")
        return Progress(
            state=State(document["state"]),
            seq=int(document["seq"]),
            log=TaskLog.model_validate(log) if log is not None else None,
            input_types=tuple(FileType(t) for t in types) if types is not None else None,
            attempt=int(attempt) if attempt is not None else None,
            failure=(
                AttemptFailure(Cause(failure["cause"]), str(failure["detail"]))
                if failure is not None
                else None
            ),
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
        # Both absent from snapshots of taskmasters that knew no attempts: read as None.
        "attempt": progress.attempt,
        "failure": (
            {"cause": progress.failure.cause.value, "detail": progress.failure.detail}
            if progress.failure is not None
            else None
        ),
    }


def _shortened(progress: Progress, log: TaskLog, max_bytes: int) -> str:
    trimmed = log.model_copy(deep=True)
    limit = max(
        (len((text or "").encode()) for entry in log.logs for text in (entry.stdout, entry.stderr)),
        default=0,
    )
    while limit > 0:
        limit //= 2
        for entry, original in zip(trimmed.logs, log.logs, strict=True):
            entry.stdout = _tail(original.stdout, limit)
            entry.stderr = _tail(original.stderr, limit)
        notes = list(trimmed.system_logs or [])
        if SHORTENED_NOTE not in notes:
            trimmed.system_logs = [*notes, SHORTENED_NOTE]
        text = _text(progress, trimmed)
        if len(text.encode()) <= max_bytes:
            return text
    # Still too big without tails (a directory output of many files, many error lines): the
    # final state matters more than a complete list, so list fewer output files (every one was
    # uploaded), then fewer system log lines, each time saying so.
    files = trimmed.outputs
    if files:
        notes = list(trimmed.system_logs or [])
        trimmed.outputs = []
        trimmed.system_logs = [*notes, OUTPUTS_NOTE.format(kept=len(files), total=len(files))]
        budget = max_bytes - len(_text(progress, trimmed).encode())
        trimmed.outputs = _head(files, lambda f: f.dump(), budget)
        kept = len(trimmed.outputs)
        trimmed.system_logs = [*notes, OUTPUTS_NOTE.format(kept=kept, total=len(files))]
        text = _text(progress, trimmed)
        if len(text.encode()) <= max_bytes:
            return text
    lines = list(trimmed.system_logs or [])
    trimmed.system_logs = [LINES_NOTE.format(left=len(lines))]
    budget = max_bytes - len(_text(progress, trimmed).encode())
    kept_lines = _head(lines, lambda line: line, budget)
    trimmed.system_logs = [*kept_lines, LINES_NOTE.format(left=len(lines) - len(kept_lines))]
    return _text(progress, trimmed)


def _text(progress: Progress, log: TaskLog) -> str:
    return json.dumps(_document(progress, log), separators=(",", ":"))


def _head(items: list[T], as_json: Callable[[T], object], budget: int) -> list[T]:
    """The first `items` whose JSON (with a comma each) fits in `budget` bytes."""
    kept: list[T] = []
    for item in items:
        budget -= len(json.dumps(as_json(item), separators=(",", ":")).encode()) + 1
        if budget < 0:
            break
        kept.append(item)
    return kept


def _tail(text: str | None, limit: int) -> str | None:
    if text is None:
        return None
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[len(data) - limit :].decode(errors="ignore")
