"""Whether an executor has ended, from what the store says of its task, read cheaply.

An executor has ended once its ExecutorLog is stored (the engine records it when the executor's
process or pod has ended, with its exit code and end time), once a later executor has one (it
started after this one ended), or once the task is in a terminal state (it will never run).

Followers ask every poll interval. Those of one task in one API worker share one store read per
interval (`TaskSnapshots`), so a hundred followers of a task cost what one costs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tesk.store.base import TaskDocuments, TaskStore
from tesk.tes.states import is_terminal


def executor_logs(documents: TaskDocuments) -> list[dict[str, Any]]:
    log = documents.log or {}
    logs = log.get("logs")
    return [entry for entry in logs if isinstance(entry, dict)] if isinstance(logs, list) else []


def executor_ended(documents: TaskDocuments, index: int) -> bool:
    return is_terminal(documents.state) or len(executor_logs(documents)) > index


def kept_tail(documents: TaskDocuments, index: int, stream: str) -> bytes:
    """The tail of `stream` the ExecutorLog of executor `index` kept (b"": none yet)."""
    logs = executor_logs(documents)
    if index >= len(logs):
        return b""
    text = logs[index].get(stream)
    return text.encode() if isinstance(text, str) else b""


@dataclass
class _Entry:
    lock: threading.Lock = field(default_factory=threading.Lock)
    read_at: float = float("-inf")
    documents: TaskDocuments | None = None
    users: int = 0


class TaskSnapshots:
    """The stored documents of tasks being followed, each read at most once per `max_age_s`."""

    def __init__(
        self,
        store: TaskStore,
        max_age_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._max_age = max_age_s
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}

    def watch(self, task_id: str) -> None:
        """Keep the snapshot of `task_id` while someone follows it (pair with `unwatch`)."""
        with self._lock:
            self._entries.setdefault(task_id, _Entry()).users += 1

    def unwatch(self, task_id: str) -> None:
        with self._lock:
            entry = self._entries.get(task_id)
            if entry is not None:
                entry.users -= 1
                if entry.users <= 0:
                    del self._entries[task_id]

    def current(self, task_id: str) -> TaskDocuments | None:
        """The task's documents, read again when the last read is older than `max_age_s`.

        Raises StoreUnavailable. None: the task is gone.
        """
        with self._lock:
            entry = self._entries.get(task_id) or _Entry()
        with entry.lock:
            if self._clock() - entry.read_at >= self._max_age:
                entry.documents = self._store.read(task_id)
                entry.read_at = self._clock()
            return entry.documents
