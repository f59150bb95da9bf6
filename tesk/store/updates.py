"""Progress updates and claims on the driver's cursor, with statements compiled once.

A runner writes several progress reports per task and claims every task it runs, each under
SQLite's one write lock. Through a SQLAlchemy Connection such a write spent most of its time
building, caching and wrapping its four statements (about 1 ms on a 2-core machine); on the
driver's cursor it runs the same SQL, compiled once per dialect at start, in a fraction of that
(benchmarks/local_throughput.py, docs/performance-local.md).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from tesk.store import events as event_sql
from tesk.store.base import TaskRecord
from tesk.store.dbapi import Compiled
from tesk.store.fair import Queued, fair_order
from tesk.store.schema import owner_turns, task_events, tasks
from tesk.tes import events
from tesk.tes.models import FileType, Task, TaskLog
from tesk.tes.progress import Progress, TaskProgressState, reduce
from tesk.tes.retries import RetryPolicy
from tesk.tes.states import STARTED, TERMINAL, State

DOCUMENT_COLUMNS = (
    tasks.c.id,
    tasks.c.state,
    tasks.c.created_us,
    tasks.c.name,
    tasks.c.owner,
    tasks.c.seq,
    tasks.c.version,
    tasks.c.worker,
    tasks.c.task,
    tasks.c.log,
    tasks.c.attempts,
)
_PROGRESS_COLUMNS = ("state", "seq", "log", "version", "worker", "attempts")


class Conflict:
    """Another writer changed the row between our read and our write."""


CONFLICT = Conflict()


class Updates:
    """The write path's statements for one dialect; every method runs in the caller's
    transaction, on its cursor."""

    def __init__(self, dialect: Dialect) -> None:
        by_id = tasks.c.id == sa.bindparam("id")
        self._read = Compiled(sa.select(*DOCUMENT_COLUMNS).where(by_id), dialect)
        # Bind names differ from the column names: SQLAlchemy reserves those for SET values.
        progress: dict[str, sa.BindParameter[Any]] = {
            name: sa.bindparam(f"new_{name}") for name in _PROGRESS_COLUMNS
        }
        versioned = sa.update(tasks).where(by_id, tasks.c.version == sa.bindparam("read_version"))
        self._update = Compiled(versioned.values(**progress), dialect)
        self._update_with_task = Compiled(
            versioned.values(**progress, task=sa.bindparam("new_task")), dialect
        )
        self.insert_events = Compiled(task_events.insert(), dialect, event_sql.EVENT_KEYS)
        started: list[sa.ColumnElement[str]] = [
            sa.literal_column(f"'{state.value}'") for state in sorted(STARTED)
        ]
        self._running_per_owner = Compiled(
            sa.select(tasks.c.owner, sa.func.count())
            .where(tasks.c.state.in_(started))
            .group_by(tasks.c.owner),
            dialect,
        )
        # No owner can get more than `limit` of the slots: its `limit` oldest tasks are enough.
        turn = (
            sa.func.row_number()
            .over(partition_by=tasks.c.owner, order_by=(tasks.c.created_us, tasks.c.id))
            .label("turn")
        )
        ranked = (
            sa.select(tasks.c.id, tasks.c.owner, tasks.c.created_us, turn)
            .where(tasks.c.state == sa.literal_column(f"'{State.QUEUED.value}'"))
            .subquery()
        )
        self._oldest_per_owner = Compiled(
            sa.select(ranked.c.id, ranked.c.owner, ranked.c.created_us).where(
                ranked.c.turn <= sa.bindparam("limit")
            ),
            dialect,
        )
        self._turns = Compiled(sa.select(owner_turns.c.owner, owner_turns.c.last_turn_us), dialect)
        insert = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
        upsert = insert(owner_turns)
        self._record_turn = Compiled(
            upsert.on_conflict_do_update(
                index_elements=[owner_turns.c.owner],
                set_={"last_turn_us": upsert.excluded.last_turn_us},
            ),
            dialect,
            ("owner", "last_turn_us"),
        )

    def compare_and_set(
        self,
        cursor: Any,
        task_id: str,
        progress: Progress,
        expected: Collection[State] | None,
        worker: str | None,
        retries: RetryPolicy | None = None,
    ) -> TaskRecord | Conflict | None:
        """Apply `progress` to the task if the reducer accepts it; CONFLICT if the row changed."""
        cursor.execute(self._read.sql, self._read.params({"id": task_id}))
        row = cursor.fetchone()
        if row is None:
            return None
        (
            _,
            state_text,
            created_us,
            name,
            owner,
            seq,
            version,
            row_worker,
            task_text,
            log_text,
            attempts_text,
        ) = row
        state = State(state_text)
        if expected is not None and state not in expected:
            return None
        log = TaskLog.model_validate_json(log_text) if log_text is not None else None
        attempts = parse_attempts(attempts_text)
        # The reducer only carries input types through; the stored ones are read below when needed.
        new = reduce(TaskProgressState(state, seq, log, attempt=len(attempts) + 1), progress)
        if new is None:
            return None
        task = Task.model_validate_json(task_text)
        values: dict[str, Any] = {
            "id": task_id,
            "read_version": version,
            "new_state": new.state.value,
            "new_seq": new.seq,
            "new_log": log_json(new.log),
            "new_version": version + 1,
            "new_worker": row_worker if worker is None else worker,
            "new_attempts": attempts_json(attempts),
        }
        statement = self._update
        typed = progress.input_types is not None and new.input_types is not None
        if typed and _set_input_types(task, new.input_types or ()):
            statement = self._update_with_task
            values["new_task"] = task_json(task)
        note = _retry_note(retries, task, new, progress)
        if note is not None:
            attempts = (*attempts, _archived(new.log, note))
            values.update(
                new_state=State.QUEUED.value,
                new_log=None,
                new_worker=None,
                new_attempts=attempts_json(attempts),
            )
            new = TaskProgressState(State.QUEUED, new.seq, None, attempt=len(attempts) + 1)
        cursor.execute(statement.sql, statement.params(values))
        if cursor.rowcount != 1:
            return CONFLICT
        found = events.changed(state, log, new.state, new.log, time.time_ns() // 1000)
        if found:
            rows = [self.insert_events.params(r) for r in event_sql.event_rows(task_id, found)]
            cursor.executemany(self.insert_events.sql, rows)
        return TaskRecord(
            id=task_id,
            state=new.state,
            created_us=created_us,
            task=task,
            name=name,
            owner=owner,
            log=new.log,
            seq=new.seq,
            worker=values["new_worker"],
            tags=dict(task.tags or {}),  # a task's tags are those of its document
            attempts=attempts,
        )

    def fair_candidates(self, cursor: Any, limit: int) -> list[str]:
        """Up to `limit` QUEUED task ids in fair order (tesk/store/fair.py)."""
        cursor.execute(self._running_per_owner.sql, self._running_per_owner.params({}))
        running: dict[str | None, int] = dict(cursor.fetchall())
        cursor.execute(self._oldest_per_owner.sql, self._oldest_per_owner.params({"limit": limit}))
        queued = [Queued(task_id, owner, created_us) for task_id, owner, created_us in cursor]
        waiting = {task.owner for task in queued}
        cursor.execute(self._turns.sql, self._turns.params({}))
        turns = dict(cursor.fetchall())
        last_turn = {owner: turns[turn_key(owner)] for owner in waiting if turn_key(owner) in turns}
        return fair_order(queued, running, limit, last_turn)

    def record_turns(self, cursor: Any, owners: Sequence[str | None]) -> None:
        """Remember that `owners` were just served, in that order."""
        if not owners:
            return
        now = time.time_ns() // 1000
        last = {turn_key(owner): now + position for position, owner in enumerate(owners)}
        cursor.executemany(
            self._record_turn.sql,
            [
                self._record_turn.params({"owner": owner, "last_turn_us": value})
                for owner, value in last.items()
            ],
        )


def turn_key(owner: str | None) -> str:
    """The `owner_turns` key of an owner (tasks without an owner are the owner "")."""
    return "" if owner is None else owner


def task_json(task: Task) -> str:
    return task.model_dump_json(exclude_unset=True, exclude_none=True)


def log_json(log: TaskLog | None) -> str | None:
    return None if log is None else log.model_dump_json(exclude_unset=True, exclude_none=True)


def parse_attempts(text: str | None) -> tuple[TaskLog, ...]:
    if text is None:
        return ()
    return tuple(TaskLog.model_validate(document) for document in orjson.loads(text))


def attempts_json(attempts: Sequence[TaskLog]) -> str | None:
    if not attempts:
        return None
    return orjson.dumps([orjson.loads(log_json(log) or "{}") for log in attempts]).decode()


def _set_input_types(task: Task, types: Sequence[FileType]) -> bool:
    """Fill in the inputs' types; whether any changed."""
    changed = False
    for item, kind in zip(task.inputs or [], types, strict=False):
        if item.type != kind:
            item.type = kind
            changed = True
    return changed


def _retry_note(
    retries: RetryPolicy | None, task: Task, new: TaskProgressState, progress: Progress
) -> str | None:
    """The policy's line for the attempt `progress` ends, when the policy retries it."""
    if retries is None or new.state not in TERMINAL:
        return None
    return retries.retry(task, new.attempt, new.state, progress.failure)


def _archived(log: TaskLog | None, note: str) -> TaskLog:
    """The TaskLog of an attempt that is retried: its last log with `note` at the end."""
    archived = log.model_copy(deep=True) if log is not None else TaskLog()
    archived.system_logs = [*(archived.system_logs or []), note]
    return archived
