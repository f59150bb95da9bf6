"""The TaskStore contract every store implements (SQL; an in-memory fake for unit tests)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tesk.tes.events import TaskEvent
from tesk.tes.models import Task, TaskLog
from tesk.tes.progress import Progress
from tesk.tes.retries import RetryPolicy
from tesk.tes.states import State


@dataclass(frozen=True)
class TaskRecord:
    """One stored task.

    `task` is the task document as accepted at create (with id and creation_time, without state and
    logs); `state`, `log` and `seq` are the progress the reducer keeps, `log` that of the current
    attempt and `attempts` the TaskLogs of the attempts before it, oldest first. `created_us` is
    creation_time in microseconds since the epoch (the listing order). `worker` names who runs the
    task (a local runner, a Kubernetes Job) so that a restarted worker finds its orphans.
    """

    id: str
    state: State
    created_us: int
    task: Task
    name: str | None = None
    owner: str | None = None
    log: TaskLog | None = None
    seq: int = 0
    worker: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    attempts: tuple[TaskLog, ...] = ()

    @property
    def attempt(self) -> int:
        """The number of the current attempt, from 1."""
        return len(self.attempts) + 1


@dataclass(frozen=True)
class Cursor:
    """Keyset position: the last task of a page (newest first)."""

    created_us: int
    task_id: str


@dataclass(frozen=True)
class TaskQuery:
    """ListTasks filters. `tags` are (key, value) pairs; a value of None matches any value."""

    page_size: int = 256
    after: Cursor | None = None
    name_prefix: str | None = None
    state: State | None = None
    tags: Sequence[tuple[str, str | None]] = ()
    owner: str | None = None  # None: every owner (admin or auth off)
    with_documents: bool = True  # False: id and state only (MINIMAL view)


@dataclass(frozen=True)
class TaskPage:
    records: list[TaskRecord]
    next_cursor: Cursor | None


@dataclass(frozen=True, slots=True)
class TaskDocuments:
    """One task as the views serve it: its stored JSON documents decoded to plain data.

    What GetTask and ListTasks read: no models, because a view only copies the stored fields
    (validated when the task was created or its progress applied). `task` and `log` are None when
    read without documents (MINIMAL); `log` is also None when the task has no log yet.
    `attempts` are the TaskLogs of the attempts before the current one (None: there were none).
    """

    id: str
    state: State
    created_us: int
    owner: str | None = None
    task: dict[str, Any] | None = None
    log: dict[str, Any] | None = None
    attempts: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class DocumentPage:
    tasks: list[TaskDocuments]
    next_cursor: Cursor | None


@dataclass(frozen=True)
class EventQuery:
    """Events with `after` < id <= `up_to` (None: no upper bound), oldest first, at most `limit`.

    `task_id`: one task's events. The other filters are those of ListTasks, on the task of each
    event (`state` on the state the event reports).
    """

    after: int = 0
    up_to: int | None = None
    task_id: str | None = None
    owner: str | None = None  # None: every owner (admin or auth off)
    state: State | None = None
    name_prefix: str | None = None
    tags: Sequence[tuple[str, str | None]] = ()
    limit: int = 500


@dataclass(frozen=True, slots=True)
class EventMark:
    """The id, task and time of a stored event: what a watcher of new events reads."""

    id: int
    task_id: str
    time_us: int


def documents_of(record: TaskRecord, with_documents: bool = True) -> TaskDocuments:
    """The documents of a record (for stores that keep models, such as test fakes)."""
    if not with_documents:
        return TaskDocuments(record.id, record.state, record.created_us, record.owner)
    log = record.log.dump() if record.log is not None else None
    attempts = [earlier.dump() for earlier in record.attempts] or None
    return TaskDocuments(
        record.id, record.state, record.created_us, record.owner, record.task.dump(), log, attempts
    )


class StoreUnavailable(Exception):
    """The database cannot be reached; nothing was written."""


class TaskStore(Protocol):
    def create(self, record: TaskRecord) -> None:
        """Persist a new task and its first event.

        Raises StoreUnavailable when nothing could be written."""

    def get(self, task_id: str) -> TaskRecord | None: ...

    def read(self, task_id: str, *, with_documents: bool = True) -> TaskDocuments | None:
        """One task for a view; without documents only id, state, created_us and owner."""

    def list_documents(self, query: TaskQuery) -> DocumentPage:
        """list_tasks for the views: the same page, as documents (none when not
        `query.with_documents`)."""

    def list_tasks(self, query: TaskQuery) -> TaskPage:
        """Tasks matching `query`, newest first (by created_us, then id), keyset-paginated."""

    def update(
        self,
        task_id: str,
        progress: Progress,
        *,
        expected: Collection[State] | None = None,
        worker: str | None = None,
        retries: RetryPolicy | None = None,
    ) -> TaskRecord | None:
        """Apply `progress` through the reducer with compare-and-set, with its task events
        (tesk.tes.events.changed) in the same transaction.

        Returns the updated record, or None when the task does not exist, its state is not in
        `expected` (when given), or the reducer ignored the report. `worker`, when given, is stored
        with the change (the claim of a task by a runner).

        With `retries`, a report that ends the current attempt in a way the policy retries
        requeues the task in the same transaction: the attempt's TaskLog (the report applied,
        plus the policy's line saying why) is appended to `attempts`, and the task is QUEUED
        again with no log and no worker as the next attempt (`retried()` tells the caller).
        """

    def claim(self, worker: str, limit: int) -> list[TaskRecord]:
        """Move up to `limit` QUEUED tasks, oldest first, to INITIALIZING held by `worker`.

        Returns the claimed records. Each claim is the compare-and-set `update` does (expected
        QUEUED, with `worker`), all in one round trip: a runner with N free slots takes N tasks
        in one call, and a task cancelled or claimed elsewhere meanwhile is simply not returned.
        """

    def find(self, states: Collection[State], worker: str | None = None) -> list[TaskRecord]:
        """Tasks in `states` (optionally only those held by `worker`), oldest first."""

    def count_by_state(self, states: Collection[State]) -> dict[State, int]:
        """How many tasks are in each of `states` (0 for none), without reading any task."""

    def count_owned(self, owner: str | None, states: Collection[State]) -> int:
        """How many tasks of `owner` (None: tasks without one) are in any of `states`."""

    def events(self, query: EventQuery) -> list[TaskEvent]:
        """The task events matching `query`, by id (the order they were written in)."""

    def event_marks(self, after: int, limit: int) -> list[EventMark]:
        """Up to `limit` events with an id above `after`, by id, without their contents."""

    def last_event_id(self) -> int:
        """The highest event id written so far (0: none)."""

    def ping(self) -> None:
        """Raise StoreUnavailable when the database cannot be reached."""

    def close(self) -> None: ...
