"""A TaskStore wrapper that logs and records every task state change it applies.

Every state change of every backend goes through `TaskStore.update` or `claim` (the engine's
reports, the runner's claims, cancels, the Kubernetes reconciler), so watching the store sees
them all, in whichever process applies them, without the engine knowing about metrics.

The store tells what a task became, not what it was. The wrapper remembers the last state it saw
of each active task (from create, get, find and update, which is how every TESK process meets a
task before changing it) and reads the task once when it has not seen it before. Final states
need no memory: a task reaches one only once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection
from typing import Any, TypeVar

from tesk.observability.recording import Recorder, TaskEnded
from tesk.store.base import (
    DocumentPage,
    EventMark,
    EventQuery,
    TaskDocuments,
    TaskPage,
    TaskQuery,
    TaskRecord,
    TaskStore,
)
from tesk.tes.events import TaskEvent
from tesk.tes.models import TaskLog, epoch_seconds
from tesk.tes.progress import Progress
from tesk.tes.retries import RetryPolicy, retried
from tesk.tes.states import FAILED, STARTED, TERMINAL, State

logger = logging.getLogger("tesk.tasks")

N = TypeVar("N", int, float)

_REMEMBERED = 10_000


class ObservedStore:
    def __init__(self, inner: TaskStore, recorder: Recorder) -> None:
        self.inner = inner
        self._recorder = recorder
        self._seen: OrderedDict[str, State] = OrderedDict()
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        # Anything beyond the TaskStore protocol belongs to the wrapped store.
        return getattr(self.inner, name)

    def create(self, record: TaskRecord) -> None:
        self.inner.create(record)
        self._remember(record.id, record.state)
        self._recorder.task_created()
        _log_change(record, None)

    def get(self, task_id: str) -> TaskRecord | None:
        record = self.inner.get(task_id)
        if record is not None:
            self._remember(record.id, record.state)
        return record

    def list_tasks(self, query: TaskQuery) -> TaskPage:
        return self.inner.list_tasks(query)

    # What the views read changes no state: nothing to remember or record.
    def read(self, task_id: str, *, with_documents: bool = True) -> TaskDocuments | None:
        return self.inner.read(task_id, with_documents=with_documents)

    def list_documents(self, query: TaskQuery) -> DocumentPage:
        return self.inner.list_documents(query)

    def find(self, states: Collection[State], worker: str | None = None) -> list[TaskRecord]:
        records = self.inner.find(states, worker)
        for record in records:
            self._remember(record.id, record.state)
        return records

    def update(
        self,
        task_id: str,
        progress: Progress,
        *,
        expected: Collection[State] | None = None,
        worker: str | None = None,
        retries: RetryPolicy | None = None,
    ) -> TaskRecord | None:
        before = self._last_seen(task_id)
        if before is None and progress.state not in TERMINAL:
            known = self.inner.get(task_id)
            before = known.state if known is not None else None
        if retries is None:
            updated = self.inner.update(task_id, progress, expected=expected, worker=worker)
        else:
            updated = self.inner.update(
                task_id, progress, expected=expected, worker=worker, retries=retries
            )
        if updated is None:
            self._forget(task_id)  # refused: the task may have moved on elsewhere
            return None
        self._remember(task_id, updated.state)
        if retried(progress, updated.state):
            self._retried(updated, before, progress)
        elif updated.state != before or updated.state in TERMINAL:
            self._changed(updated, before)
        return updated

    def claim(self, worker: str, limit: int) -> list[TaskRecord]:
        claimed = self.inner.claim(worker, limit)
        for record in claimed:
            self._remember(record.id, record.state)
            self._changed(record, State.QUEUED)  # a claim takes QUEUED tasks only
        return claimed

    def count_by_state(self, states: Collection[State]) -> dict[State, int]:
        return self.inner.count_by_state(states)

    def count_owned(self, owner: str | None, states: Collection[State]) -> int:
        return self.inner.count_owned(owner, states)

    def events(self, query: EventQuery) -> list[TaskEvent]:
        return self.inner.events(query)

    def event_marks(self, after: int, limit: int) -> list[EventMark]:
        return self.inner.event_marks(after, limit)

    def last_event_id(self) -> int:
        return self.inner.last_event_id()

    def ping(self) -> None:
        self.inner.ping()

    def close(self) -> None:
        self.inner.close()

    # -- what a change means ---------------------------------------------------------------

    def _changed(self, record: TaskRecord, before: State | None) -> None:
        _log_change(record, before)
        try:
            self._record(record, before)
        except Exception:
            # Metrics must never break a state change that was stored.
            logger.exception("task %s: recording the change failed", record.id)

    def _retried(self, record: TaskRecord, before: State | None, progress: Progress) -> None:
        note = (record.attempts[-1].system_logs or [""])[-1] if record.attempts else ""
        fields: dict[str, Any] = {
            "task_id": record.id,
            "from_state": before.value if before is not None else None,
            "to_state": record.state.value,
            "reason": note,
        }
        logger.warning(
            "task %s: %s -> QUEUED (%s)", record.id, fields["from_state"] or "?", note, extra=fields
        )
        try:
            reason = progress.failure.cause.value if progress.failure else "unknown"
            self._recorder.attempt_retried(reason)
        except Exception:
            logger.exception("task %s: recording the retry failed", record.id)

    def _record(self, record: TaskRecord, before: State | None) -> None:
        now = time.time()
        start = epoch_seconds(record.log.start_time) if record.log is not None else None
        if before == State.QUEUED and record.state in STARTED:
            self._recorder.task_started(max(0.0, now - record.created_us / 1e6), record.owner)
        elif before == State.QUEUED and record.state in TERMINAL and start is not None:
            # The start went unseen (a report was skipped): the engine's log says when.
            self._recorder.task_started(max(0.0, start - record.created_us / 1e6), record.owner)
        if record.state in TERMINAL:
            self._recorder.task_ended(_ended(record, start, now))

    # -- memory of states ------------------------------------------------------------------

    def _remember(self, task_id: str, state: State) -> None:
        with self._lock:
            if state in TERMINAL:
                self._seen.pop(task_id, None)
                return
            self._seen[task_id] = state
            self._seen.move_to_end(task_id)
            while len(self._seen) > _REMEMBERED:
                self._seen.popitem(last=False)

    def _last_seen(self, task_id: str) -> State | None:
        with self._lock:
            return self._seen.get(task_id)

    def _forget(self, task_id: str) -> None:
        with self._lock:
            self._seen.pop(task_id, None)


def _ended(record: TaskRecord, start: float | None, now: float) -> TaskEnded:
    log: TaskLog | None = record.log
    if log is None or start is None:
        return TaskEnded(state=record.state.value, owner=record.owner)
    end = epoch_seconds(log.end_time) or now
    usage = log.metadata or {}
    return TaskEnded(
        state=record.state.value,
        run_s=max(0.0, end - start),
        exit_codes=tuple(entry.exit_code for entry in log.logs),
        owner=record.owner,
        cpu_seconds=_number(usage.get("usage.cpu_seconds"), float),
        bytes_staged_in=_number(usage.get("usage.bytes_staged_in"), int),
        bytes_staged_out=_number(usage.get("usage.bytes_staged_out"), int),
    )


def _number(text: str | None, kind: Callable[[str], N]) -> N | None:
    if text is None:
        return None
    try:
        return kind(text)
    except ValueError:
        return None


def _log_change(record: TaskRecord, before: State | None) -> None:
    fields: dict[str, Any] = {
        "task_id": record.id,
        "from_state": before.value if before is not None else None,
        "to_state": record.state.value,
    }
    message = "task %s: %s -> %s"
    args: tuple[Any, ...] = (record.id, fields["from_state"] or "?", record.state.value)
    reason = _reason(record)
    if reason:
        fields["reason"] = reason
        message += " (%s)"
        args += (reason,)
    if before is None and record.state == State.QUEUED:
        message, args = "task %s: created, QUEUED", (record.id,)
    level = logging.WARNING if record.state == State.SYSTEM_ERROR else logging.INFO
    logger.log(level, message, *args, extra=fields)


def _reason(record: TaskRecord) -> str | None:
    """The last system log line of a task that failed, which says why."""
    if record.state not in FAILED:
        return None
    lines = record.log.system_logs if record.log is not None else None
    return lines[-1] if lines else None
