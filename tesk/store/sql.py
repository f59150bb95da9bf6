"""The durable TaskStore: SQLAlchemy Core over SQLite (default) or PostgreSQL."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any, TypeAlias

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Row

from tesk.config import CustomConfig
from tesk.store import database
from tesk.store import events as event_sql
from tesk.store.base import (
    Cursor,
    DocumentPage,
    EventMark,
    EventQuery,
    StoreUnavailable,
    TaskDocuments,
    TaskPage,
    TaskQuery,
    TaskRecord,
)
from tesk.store.batch import GroupCommit
from tesk.store.dbapi import Compiled, Driver
from tesk.store.listing import page
from tesk.store.schema import create_schema, task_tags, tasks
from tesk.store.updates import (
    DOCUMENT_COLUMNS,
    Conflict,
    Updates,
    attempts_json,
    log_json,
    parse_attempts,
    task_json,
)
from tesk.tes import events
from tesk.tes.errors import InvalidRequest
from tesk.tes.models import Task, TaskLog
from tesk.tes.progress import Progress
from tesk.tes.retries import RetryPolicy
from tesk.tes.states import State

SQLITE_FILE = "tesk.db"

# Only PostgreSQL can lose a compare-and-set race (SQLite writers hold the write lock from the
# read on); each lost race means another update went through, so this bound is never reached in
# practice and only guards against a livelock.
_MAX_UPDATE_ATTEMPTS = 1000

_MINIMAL_COLUMNS = (tasks.c.id, tasks.c.state, tasks.c.created_us)
# What the views read: no tags (the task document holds them), no bookkeeping columns.
_VIEW_MINIMAL_COLUMNS = (tasks.c.id, tasks.c.state, tasks.c.created_us, tasks.c.owner)
_VIEW_COLUMNS = (*_VIEW_MINIMAL_COLUMNS, tasks.c.task, tasks.c.log, tasks.c.attempts)
_BY_ID = tasks.c.id == sa.bindparam("id")
_TASK_KEYS = (
    "id",
    "name",
    "state",
    "owner",
    "created_us",
    "seq",
    "version",
    "worker",
    "task",
    "log",
    "attempts",
)
_TAG_KEYS = ("task_id", "key", "value", "created_us")

_Row: TypeAlias = Row[*tuple[Any, ...]]


class SqlStore:
    """TaskStore on a SQL database; several processes may share one database.

    Progress goes through the shared reducer with optimistic compare-and-set on `version`, so
    concurrent writers (API workers, task runners, reconcilers) never lose each other's updates.
    """

    def __init__(
        self, url: str | sa.URL, *, pool_size: int = 5, sqlite_synchronous: str = "FULL"
    ) -> None:
        parsed = database.parse_url(url)
        self._where = database.describe(parsed)
        self._engine = database.create_engine(parsed, pool_size, sqlite_synchronous)
        self._writer = database.writing(self._engine)
        self._driver = Driver(self._engine, self._where)
        dialect = self._engine.dialect
        self._insert_task = Compiled(tasks.insert(), dialect, _TASK_KEYS)
        self._insert_tags = Compiled(task_tags.insert(), dialect, _TAG_KEYS)
        self._read = Compiled(sa.select(*_VIEW_COLUMNS).where(_BY_ID), dialect)
        self._updates = Updates(dialect)
        self._read_minimal = Compiled(sa.select(*_VIEW_MINIMAL_COLUMNS).where(_BY_ID), dialect)
        self._creates: GroupCommit[TaskRecord] = GroupCommit(self._write_new)
        try:
            with self._errors(), self._driver.writer_turn(), self._writer.begin() as conn:
                create_schema(conn)
        except BaseException:
            self._engine.dispose()
            raise

    @classmethod
    def from_config(cls, custom: CustomConfig) -> SqlStore:
        """The configured database, or the SQLite file `tesk.db` in the data dir."""
        url: str | sa.URL | None = custom.store.url
        if url is None:
            data_dir = custom.data_dir.expanduser().resolve()
            try:
                data_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreUnavailable(f"cannot create the data dir {data_dir}: {exc}") from exc
            url = sa.URL.create("sqlite", database=str(data_dir / SQLITE_FILE))
        return cls(
            url,
            pool_size=custom.store.pool_size,
            sqlite_synchronous=custom.store.sqlite_synchronous,
        )

    def create(self, record: TaskRecord) -> None:
        _reject_nul(record)
        self._creates.submit(record)

    def _write_new(self, records: Sequence[TaskRecord]) -> None:
        """Insert `records` in one transaction (see batch.py)."""
        rows = [self._insert_task.params(task_row(r)) for r in records]
        tags = [self._insert_tags.params(tag) for r in records for tag in tag_rows(r)]
        events_insert = self._updates.insert_events
        first_events = [events_insert.params(row) for r in records for row in created_rows(r)]
        try:
            with self._errors(), self._driver.transaction() as cursor:
                cursor.executemany(self._insert_task.sql, rows)
                if tags:
                    cursor.executemany(self._insert_tags.sql, tags)
                cursor.executemany(events_insert.sql, first_events)
        except self._driver.integrity_error:
            if len(records) > 1:
                raise  # each record is then written alone, and only the duplicate fails
            raise ValueError(f"task {records[0].id} exists") from None

    def get(self, task_id: str) -> TaskRecord | None:
        with self._errors(), self._engine.begin() as conn:
            row = conn.execute(sa.select(*DOCUMENT_COLUMNS).where(tasks.c.id == task_id)).first()
            if row is None:
                return None
            return _records([row])[0]

    def read(self, task_id: str, *, with_documents: bool = True) -> TaskDocuments | None:
        statement = self._read if with_documents else self._read_minimal
        with self._errors(), self._driver.cursor() as cursor:
            cursor.execute(statement.sql, statement.params({"id": task_id}))
            row = cursor.fetchone()
        if row is None:
            return None
        return _documents(row) if with_documents else _no_documents(row)

    def list_documents(self, query: TaskQuery) -> DocumentPage:
        if query.page_size < 1:
            raise ValueError(f"page_size must be at least 1, got {query.page_size}")
        columns = _VIEW_COLUMNS if query.with_documents else _VIEW_MINIMAL_COLUMNS
        # One statement: it reads a consistent snapshot without an explicit transaction.
        with self._errors(), self._engine.connect() as conn:
            rows = conn.execute(page(query, columns)).all()
        more = len(rows) > query.page_size
        rows = rows[: query.page_size]
        decode = _documents if query.with_documents else _no_documents
        found = [decode(row) for row in rows]
        cursor = Cursor(found[-1].created_us, found[-1].id) if more else None
        return DocumentPage(found, cursor)

    def list_tasks(self, query: TaskQuery) -> TaskPage:
        if query.page_size < 1:
            raise ValueError(f"page_size must be at least 1, got {query.page_size}")
        columns = DOCUMENT_COLUMNS if query.with_documents else _MINIMAL_COLUMNS
        with self._errors(), self._engine.begin() as conn:
            rows = conn.execute(page(query, columns)).all()
            more = len(rows) > query.page_size
            rows = rows[: query.page_size]
            records = _records(rows) if query.with_documents else _minimal(rows)
        cursor = Cursor(records[-1].created_us, records[-1].id) if more else None
        return TaskPage(records, cursor)

    def update(
        self,
        task_id: str,
        progress: Progress,
        *,
        expected: Collection[State] | None = None,
        worker: str | None = None,
        retries: RetryPolicy | None = None,
    ) -> TaskRecord | None:
        if worker is not None and "\x00" in worker:
            raise InvalidRequest("a worker name cannot contain NUL characters")
        for _ in range(_MAX_UPDATE_ATTEMPTS):
            with self._errors(), self._driver.transaction() as cursor:
                outcome = self._updates.compare_and_set(
                    cursor, task_id, progress, expected, worker, retries
                )
            if not isinstance(outcome, Conflict):
                return outcome
        raise StoreUnavailable(
            f"{self._where}: task {task_id} changed under {_MAX_UPDATE_ATTEMPTS} updates in a row"
        )

    def claim(self, worker: str, limit: int) -> list[TaskRecord]:
        if "\x00" in worker:
            raise InvalidRequest("a worker name cannot contain NUL characters")
        if limit < 1:
            return []
        claimed: list[TaskRecord] = []
        with self._errors(), self._driver.transaction() as cursor:
            for task_id in self._updates.fair_candidates(cursor, limit):
                # A conflict (PostgreSQL: another runner got there first) only skips that task.
                outcome = self._updates.compare_and_set(
                    cursor, task_id, Progress(State.INITIALIZING), {State.QUEUED}, worker
                )
                if isinstance(outcome, TaskRecord):
                    claimed.append(outcome)
            self._updates.record_turns(cursor, [record.owner for record in claimed])
        return claimed

    def find(self, states: Collection[State], worker: str | None = None) -> list[TaskRecord]:
        if not states:
            return []
        statement = sa.select(*DOCUMENT_COLUMNS).where(tasks.c.state.in_([s.value for s in states]))
        if worker is not None:
            statement = statement.where(tasks.c.worker == worker)
        statement = statement.order_by(tasks.c.created_us, tasks.c.id)
        with self._errors(), self._engine.begin() as conn:
            return _records(conn.execute(statement).all())

    def count_by_state(self, states: Collection[State]) -> dict[State, int]:
        counts = dict.fromkeys(states, 0)
        if not counts:
            return counts
        # Served by the (state, created_us, id) index alone.
        statement = (
            sa.select(tasks.c.state, sa.func.count())
            .where(tasks.c.state.in_([s.value for s in counts]))
            .group_by(tasks.c.state)
        )
        with self._errors(), self._engine.begin() as conn:
            for state, count in conn.execute(statement).all():
                counts[State(state)] = int(count)
        return counts

    def count_owned(self, owner: str | None, states: Collection[State]) -> int:
        if not states:
            return 0
        # Served by the (state, owner, created_us, id) index alone.
        mine = tasks.c.owner.is_(None) if owner is None else tasks.c.owner == owner
        statement = sa.select(sa.func.count()).where(
            tasks.c.state.in_([s.value for s in states]), mine
        )
        with self._errors(), self._engine.begin() as conn:
            return int(conn.execute(statement).scalar_one())

    def events(self, query: EventQuery) -> list[events.TaskEvent]:
        with self._errors(), self._engine.connect() as conn:
            return event_sql.to_events(conn.execute(event_sql.select_events(query)).all())

    def event_marks(self, after: int, limit: int) -> list[EventMark]:
        with self._errors(), self._engine.connect() as conn:
            return event_sql.to_marks(conn.execute(event_sql.select_marks(after, limit)).all())

    def last_event_id(self) -> int:
        with self._errors(), self._engine.connect() as conn:
            return int(conn.execute(event_sql.select_last_id()).scalar_one())

    def ping(self) -> None:
        with self._errors(), self._engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def close(self) -> None:
        self._engine.dispose()

    def _errors(self) -> AbstractContextManager[None]:
        return database.unavailable_on_error(self._where)


def task_row(record: TaskRecord) -> dict[str, Any]:
    """The `tasks` row of a new task."""
    return {
        "id": record.id,
        "name": record.name,
        "state": record.state.value,
        "owner": record.owner,
        "created_us": record.created_us,
        "seq": record.seq,
        "version": 0,
        "worker": record.worker,
        "task": task_json(record.task),
        "log": log_json(record.log),
        "attempts": attempts_json(record.attempts),
    }


def created_rows(record: TaskRecord) -> list[dict[str, Any]]:
    """The `task_events` row of a new task: its first state."""
    return event_sql.event_rows(record.id, events.created(record.state, record.created_us))


def tag_rows(record: TaskRecord) -> list[dict[str, Any]]:
    """The `task_tags` rows of a new task."""
    return [
        {"task_id": record.id, "key": k, "value": v, "created_us": record.created_us}
        for k, v in record.tags.items()
    ]


def _reject_nul(record: TaskRecord) -> None:
    """Refuse what PostgreSQL's text columns cannot hold, on every database alike.

    The documents are JSON, where a NUL is an escape sequence; only the indexed columns matter.
    """
    fields = {"id": record.id, "name": record.name, "owner": record.owner, "worker": record.worker}
    fields |= {f"tag key {k!r}": k for k in record.tags}
    fields |= {f"value of tag {k!r}": v for k, v in record.tags.items()}
    for what, text in fields.items():
        if text is not None and "\x00" in text:
            raise InvalidRequest(f"the task's {what} cannot contain NUL characters")


def _records(rows: Sequence[_Row]) -> list[TaskRecord]:
    return [_record(row) for row in rows]


def _record(row: Sequence[Any]) -> TaskRecord:
    task_id, state, created_us, name, owner, seq, _, worker, task_text, log, attempts = row
    task = Task.model_validate_json(task_text)
    return TaskRecord(
        id=task_id,
        state=State(state),
        created_us=created_us,
        task=task,
        name=name,
        owner=owner,
        log=TaskLog.model_validate_json(log) if log is not None else None,
        seq=seq,
        worker=worker,
        tags=dict(task.tags or {}),  # a task's tags are those of its document
        attempts=parse_attempts(attempts),
    )


def _documents(row: Sequence[Any]) -> TaskDocuments:
    task_id, state, created_us, owner, task, log, attempts = row
    return TaskDocuments(
        task_id,
        State(state),
        created_us,
        owner,
        orjson.loads(task),
        orjson.loads(log) if log is not None else None,
        orjson.loads(attempts) if attempts is not None else None,
    )


def _no_documents(row: Sequence[Any]) -> TaskDocuments:
    task_id, state, created_us, owner = row
    return TaskDocuments(task_id, State(state), created_us, owner)


def _minimal(rows: Iterable[_Row]) -> list[TaskRecord]:
    """Records that carry id, state and created_us only (the MINIMAL view needs no more)."""
    return [
        TaskRecord(
            id=task_id,
            state=State(state),
            created_us=created_us,
            task=Task.model_construct({"id"}, id=task_id, executors=[]),
        )
        for task_id, state, created_us in rows
    ]
