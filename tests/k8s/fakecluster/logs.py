"""Container logs as the node keeps them: lines with the time they were written, per attempt."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime

from .meta import now, timestamp_nano


@dataclass
class ContainerLog:
    """The output of one run of one container: stdout and stderr interleaved, as written."""

    lines: list[tuple[datetime, bytes]] = field(default_factory=list)
    finished: bool = False
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def write(self, chunk: bytes) -> None:
        if not chunk:
            return
        with self._cond:
            stamp = now()
            for piece in chunk.splitlines(keepends=True):
                if self.lines and not self.lines[-1][1].endswith(b"\n"):
                    first_stamp, partial = self.lines[-1]
                    self.lines[-1] = (first_stamp, partial + piece)
                else:
                    self.lines.append((stamp, piece))
            self._cond.notify_all()

    def finish(self) -> None:
        with self._cond:
            self.finished = True
            self._cond.notify_all()

    def wait_for_more(self, seen: int, timeout: float) -> tuple[list[tuple[datetime, bytes]], bool]:
        """Lines after the first `seen` (waiting up to `timeout` for some) and whether done.

        A last line still missing its newline is only returned once the log is finished."""
        with self._cond:
            if self._complete_count() <= seen and not self.finished:
                self._cond.wait(timeout)
            count = len(self.lines) if self.finished else self._complete_count()
            return self.lines[seen:count], self.finished and count >= len(self.lines)

    def _complete_count(self) -> int:
        if self.lines and not self.lines[-1][1].endswith(b"\n"):
            return len(self.lines) - 1
        return len(self.lines)

    def snapshot(self) -> list[tuple[datetime, bytes]]:
        """Every line so far, the last one possibly without its newline yet."""
        with self._cond:
            return list(self.lines)

    def text(self) -> bytes:
        with self._cond:
            return b"".join(line for _, line in self.lines)


def render(
    lines: list[tuple[datetime, bytes]],
    *,
    tail: int | None = None,
    since: datetime | None = None,
    timestamps: bool = False,
    limit_bytes: int | None = None,
) -> bytes:
    """The body of a `GET .../log` for the selected lines."""
    selected = [(stamp, line) for stamp, line in lines if since is None or stamp >= since]
    if tail is not None:
        selected = selected[-tail:] if tail > 0 else []
    body = b"".join(
        (timestamp_nano(stamp).encode() + b" " if timestamps else b"") + line
        for stamp, line in selected
    )
    return body[:limit_bytes] if limit_bytes is not None else body


class LogBook:
    """Every container run's log, kept until its pod is deleted (as the node keeps them)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._logs: dict[tuple[str, str], list[ContainerLog]] = {}

    def start(self, pod_uid: str, container: str) -> ContainerLog:
        log = ContainerLog()
        with self._lock:
            self._logs.setdefault((pod_uid, container), []).append(log)
        return log

    def current(self, pod_uid: str, container: str) -> ContainerLog | None:
        with self._lock:
            runs = self._logs.get((pod_uid, container))
            return runs[-1] if runs else None

    def previous(self, pod_uid: str, container: str) -> ContainerLog | None:
        with self._lock:
            runs = self._logs.get((pod_uid, container)) or []
            return runs[-2] if len(runs) >= 2 else None

    def forget(self, pod_uid: str) -> None:
        with self._lock:
            for key in [k for k in self._logs if k[0] == pod_uid]:
                del self._logs[key]
