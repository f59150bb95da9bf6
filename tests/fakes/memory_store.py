"""An in-memory TaskStore with the SQL store's semantics (checked by the contract suite)."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter
from collections.abc import Collection

from tesk.store.base import (
    Cursor,
    DocumentPage,
    EventMark,
    EventQuery,
    TaskDocuments,
    TaskPage,
    TaskQuery,
    TaskRecord,
    documents_of,
)
from tesk.store.fair import Queued, fair_order
from tesk.tes import events
from tesk.tes.events import NewEvent, TaskEvent
from tesk.tes.models import Task, TaskLog
from tesk.tes.progress import Progress, TaskProgressState, reduce
from tesk.tes.retries import RetryPolicy
from tesk.tes.states import STARTED, TERMINAL, State


class MemoryStore:
    def __init__(self) -> None:
        self._tasks: dict[str, TaskRecord] = {}
        self._events: list[TaskEvent] = []
        self._lock = threading.Lock()
        # When each owner was last served by a claim (tesk/store/fair.py).
        self._turns: dict[str | None, int] = {}
        self._served = 0

    def create(self, record: TaskRecord) -> None:
        with self._lock:
            if record.id in self._tasks:
                raise ValueError(f"task {record.id} exists")
            self._tasks[record.id] = record
            self._add_events(record.id, events.created(record.state, record.created_us))

    def get(self, task_id: str) -> TaskRecord | None:
        with self._lock:
            return self._tasks.get(task_id)

    def read(self, task_id: str, *, with_documents: bool = True) -> TaskDocuments | None:
        record = self.get(task_id)
        return documents_of(record, with_documents) if record is not None else None

    def list_documents(self, query: TaskQuery) -> DocumentPage:
        page = self.list_tasks(query)
        found = [documents_of(self._tasks[r.id], query.with_documents) for r in page.records]
        return DocumentPage(found, page.next_cursor)

    def list_tasks(self, query: TaskQuery) -> TaskPage:
        if query.page_size < 1:
            raise ValueError(f"page_size must be at least 1, got {query.page_size}")
        with self._lock:
            records = sorted(self._tasks.values(), key=lambda r: (r.created_us, r.id), reverse=True)
        matching = [r for r in records if _matches(r, query)]
        page = matching[: query.page_size]
        if not query.with_documents:
            page = [_minimal(r) for r in page]
        more = len(matching) > query.page_size
        cursor = Cursor(page[-1].created_us, page[-1].id) if more and page else None
        return TaskPage(page, cursor)

    def update(
        self,
        task_id: str,
        progress: Progress,
        *,
        expected: Collection[State] | None = None,
        worker: str | None = None,
        retries: RetryPolicy | None = None,
    ) -> TaskRecord | None:
        with self._lock:
            record = self._tasks.get(task_id)
            if record is None or (expected is not None and record.state not in expected):
                return None
            types = tuple(i.type for i in record.task.inputs or []) or None
            current = TaskProgressState(
                record.state,
                record.seq,
                record.log,
                types,  # type: ignore[arg-type]
                attempt=record.attempt,
            )
            new = reduce(current, progress)
            if new is None:
                return None
            task = record.task
            if new.input_types is not None and progress.input_types is not None:
                task = task.model_copy(deep=True)
                for item, kind in zip(task.inputs or [], new.input_types, strict=False):
                    item.type = kind
            updated = dataclasses.replace(
                record,
                state=new.state,
                seq=new.seq,
                log=new.log,
                task=task,
                worker=worker if worker is not None else record.worker,
            )
            note = (
                retries.retry(task, record.attempt, new.state, progress.failure)
                if retries is not None and new.state in TERMINAL
                else None
            )
            if note is not None:
                archived = (new.log or TaskLog()).model_copy(deep=True)
                archived.system_logs = [*(archived.system_logs or []), note]
                updated = dataclasses.replace(
                    updated,
                    state=State.QUEUED,
                    log=None,
                    worker=None,
                    attempts=(*record.attempts, archived),
                )
            self._tasks[task_id] = updated
            now_us = time.time_ns() // 1000
            self._add_events(
                task_id, events.changed(record.state, record.log, new.state, new.log, now_us)
            )
            return updated

    def claim(self, worker: str, limit: int) -> list[TaskRecord]:
        claimed: list[TaskRecord] = []
        running = Counter(record.owner for record in self.find(STARTED))
        queued = [Queued(r.id, r.owner, r.created_us) for r in self.find({State.QUEUED})]
        for task_id in fair_order(queued, running, max(0, limit), dict(self._turns)):
            updated = self.update(
                task_id, Progress(State.INITIALIZING), expected={State.QUEUED}, worker=worker
            )
            if updated is not None:
                claimed.append(updated)
                self._served += 1
                self._turns[updated.owner] = self._served
        return claimed

    def find(self, states: Collection[State], worker: str | None = None) -> list[TaskRecord]:
        with self._lock:
            found = [
                r
                for r in self._tasks.values()
                if r.state in states and (worker is None or r.worker == worker)
            ]
        return sorted(found, key=lambda r: (r.created_us, r.id))

    def count_by_state(self, states: Collection[State]) -> dict[State, int]:
        counts = dict.fromkeys(states, 0)
        with self._lock:
            for record in self._tasks.values():
                if record.state in counts:
                    counts[record.state] += 1
        return counts

    def count_owned(self, owner: str | None, states: Collection[State]) -> int:
        with self._lock:
            return sum(1 for r in self._tasks.values() if r.owner == owner and r.state in states)

    def events(self, query: EventQuery) -> list[TaskEvent]:
        with self._lock:
            candidates = [e for e in self._events if e.id > query.after]
            tasks = dict(self._tasks)
        found = []
        for event in candidates:
            if query.up_to is not None and event.id > query.up_to:
                break
            if _event_matches(event, tasks[event.task_id], query):
                found.append(event)
                if len(found) == query.limit:
                    break
        return found

    def event_marks(self, after: int, limit: int) -> list[EventMark]:
        with self._lock:
            newer = [e for e in self._events if e.id > after][:limit]
        return [EventMark(e.id, e.task_id, e.time_us) for e in newer]

    def last_event_id(self) -> int:
        with self._lock:
            return self._events[-1].id if self._events else 0

    def _add_events(self, task_id: str, new: list[NewEvent]) -> None:
        for event in new:
            number = len(self._events) + 1
            self._events.append(
                TaskEvent(
                    number,
                    task_id,
                    event.kind,
                    event.state,
                    event.time_us,
                    event.executor,
                    event.exit_code,
                )
            )

    def ping(self) -> None:
        return None

    def close(self) -> None:
        return None


def _minimal(record: TaskRecord) -> TaskRecord:
    """What a listing without documents holds: id, state and created_us (as the SQL store)."""
    stub = Task.model_construct({"id"}, id=record.id, executors=[])
    return TaskRecord(id=record.id, state=record.state, created_us=record.created_us, task=stub)


def _event_matches(event: TaskEvent, record: TaskRecord, query: EventQuery) -> bool:
    if query.task_id is not None and event.task_id != query.task_id:
        return False
    if query.state is not None and event.state != query.state:
        return False
    return _matches(
        record,
        TaskQuery(owner=query.owner, name_prefix=query.name_prefix, tags=query.tags),
    )


def _matches(record: TaskRecord, query: TaskQuery) -> bool:
    if query.after is not None and (record.created_us, record.id) >= (
        query.after.created_us,
        query.after.task_id,
    ):
        return False
    if query.owner is not None and record.owner != query.owner:
        return False
    if query.state is not None and record.state != query.state:
        return False
    if query.name_prefix and not (record.name or "").startswith(query.name_prefix):
        return False
    for key, value in query.tags:
        if key not in record.tags or (value is not None and record.tags[key] != value):
            return False
    return True
