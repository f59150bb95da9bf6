"""Followers of the EventFeed on a real SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tesk.events.feed import EventFeed, EventFilters
from tesk.events.watcher import EventWatcher
from tesk.store.schema import task_events
from tesk.store.sql import SqlStore
from tesk.tes.errors import InvalidRequest, TaskNotFound
from tesk.tes.progress import Progress
from tesk.tes.states import State
from tests.contract.conftest import make_record


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    found = SqlStore(f"sqlite:///{tmp_path / 'tesk.db'}", pool_size=2)
    yield found
    found.close()


@pytest.fixture
def feed(store: SqlStore) -> Iterator[EventFeed]:
    watcher = EventWatcher(store, 0.01)
    yield EventFeed(store, watcher, keepalive_s=0.05, retry_s=0.01)
    watcher.stop()


def test_a_quiet_stream_sends_keepalives_and_ends_after_the_final_state(
    store: SqlStore, feed: EventFeed
) -> None:
    store.create(make_record("t1", 1))
    follower = feed.task_events("t1", None)

    first = next(follower)
    quiet = next(follower)
    store.update("t1", Progress(State.CANCELING))
    store.update("t1", Progress(State.CANCELED))
    rest = [item for item in follower if item is not None]

    assert first is not None
    assert first.state is State.QUEUED
    assert quiet is None
    assert [e.state for e in rest] == [State.CANCELING, State.CANCELED]


def test_a_task_older_than_the_events_tells_its_state(store: SqlStore, feed: EventFeed) -> None:
    store.create(make_record("old", 1, state=State.COMPLETE))
    with store._engine.begin() as conn:
        conn.execute(sa.delete(task_events))

    told = list(feed.task_events("old", None))

    assert [(e.id, e.state) for e in told if e is not None] == [(0, State.COMPLETE)]


def test_checks_fail_before_the_stream_starts(store: SqlStore, feed: EventFeed) -> None:
    with pytest.raises(TaskNotFound):
        feed.task_events("missing", None)
    with pytest.raises(InvalidRequest, match="tag_value"):
        feed.all_events(EventFilters(tag_values=["x"]), None)
