"""Task events in SQL: the rows a change writes, and the reads of followers.

A follower reads only what is new to it: events above its last id, by the primary key (every
task's events) or by (task_id, id) (one task's), so each read touches the new rows alone however
long the history. The ListTasks filters apply to the task of each event, joined by its key.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from tesk.store.base import EventMark, EventQuery
from tesk.store.listing import starts_with, tag_matches
from tesk.store.schema import task_events, task_tags, tasks
from tesk.tes.events import EventKind, NewEvent, TaskEvent
from tesk.tes.states import State

EVENT_KEYS = ("task_id", "kind", "state", "time_us", "executor", "exit_code")

_COLUMNS = (
    task_events.c.id,
    task_events.c.task_id,
    task_events.c.kind,
    task_events.c.state,
    task_events.c.time_us,
    task_events.c.executor,
    task_events.c.exit_code,
)


def event_rows(task_id: str, events: Iterable[NewEvent]) -> list[dict[str, Any]]:
    """The `task_events` rows of `events` of one task (the database numbers them)."""
    return [
        {
            "task_id": task_id,
            "kind": event.kind.value,
            "state": event.state.value,
            "time_us": event.time_us,
            "executor": event.executor,
            "exit_code": event.exit_code,
        }
        for event in events
    ]


def select_events(query: EventQuery) -> sa.Select[Any]:
    conditions: list[sa.ColumnElement[bool]] = [task_events.c.id > query.after]
    if query.up_to is not None:
        conditions.append(task_events.c.id <= query.up_to)
    if query.task_id is not None:
        conditions.append(task_events.c.task_id == query.task_id)
    if query.state is not None:
        conditions.append(task_events.c.state == query.state.value)
    statement = sa.select(*_COLUMNS)
    if query.owner is not None or query.name_prefix:
        statement = statement.join(tasks, tasks.c.id == task_events.c.task_id)
        if query.owner is not None:
            conditions.append(tasks.c.owner == query.owner)
        if query.name_prefix:
            conditions.append(starts_with(tasks.c.name, query.name_prefix))
    for number, (key, value) in enumerate(query.tags):
        tag = task_tags.alias(f"tag_{number}")
        conditions.append(
            sa.exists()
            .where(tag.c.task_id == task_events.c.task_id, tag_matches(tag, key, value))
            .correlate_except(tag)
        )
    return statement.where(*conditions).order_by(task_events.c.id).limit(query.limit)


def select_marks(after: int, limit: int) -> sa.Select[Any]:
    return (
        sa.select(task_events.c.id, task_events.c.task_id, task_events.c.time_us)
        .where(task_events.c.id > after)
        .order_by(task_events.c.id)
        .limit(limit)
    )


def select_last_id() -> sa.Select[Any]:
    return sa.select(sa.func.coalesce(sa.func.max(task_events.c.id), 0))


def to_events(rows: Iterable[Sequence[Any]]) -> list[TaskEvent]:
    return [
        TaskEvent(
            id=int(event_id),
            task_id=task_id,
            kind=EventKind(kind),
            state=State(state),
            time_us=int(time_us),
            executor=executor,
            exit_code=exit_code,
        )
        for event_id, task_id, kind, state, time_us, executor, exit_code in rows
    ]


def to_marks(rows: Iterable[Sequence[Any]]) -> list[EventMark]:
    return [EventMark(int(event_id), task_id, int(time_us)) for event_id, task_id, time_us in rows]
