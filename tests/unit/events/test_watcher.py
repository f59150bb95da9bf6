"""The watcher of new events: its horizon never passes an id that may still appear."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from tesk.events.watcher import GAP_WAIT_S, EventWatcher
from tesk.store.base import EventMark


class Marks:
    """The event ids a store shows, set by the test (ids may commit out of order)."""

    def __init__(self) -> None:
        self.visible: list[int] = []
        self.reads = 0
        self.lock = threading.Lock()

    def show(self, *ids: int) -> None:
        with self.lock:
            self.visible = sorted({*self.visible, *ids})

    def event_marks(self, after: int, limit: int) -> list[EventMark]:
        with self.lock:
            self.reads += 1
            return [EventMark(i, f"task-{i % 2}", i) for i in self.visible if i > after][:limit]

    def last_event_id(self) -> int:
        with self.lock:
            return max(self.visible, default=0)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def marks() -> Marks:
    return Marks()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def watcher(marks: Marks, clock: Clock) -> Iterator[EventWatcher]:
    found = EventWatcher(marks, 0.01, clock=clock)  # type: ignore[arg-type]
    yield found
    found.stop()


def settle(watcher: EventWatcher, marks: Marks) -> int:
    """The horizon after the watcher has read the store twice more."""
    start = marks.reads
    while marks.reads < start + 2:
        threading.Event().wait(0.01)
    horizon = watcher.horizon(1.0)
    assert horizon is not None
    return horizon


def test_the_horizon_waits_for_an_id_that_commits_late(
    watcher: EventWatcher, marks: Marks, clock: Clock
) -> None:
    marks.show(1, 2)
    with watcher.following():
        assert settle(watcher, marks) == 2
        marks.show(4, 5)  # 3 is still being committed
        assert settle(watcher, marks) == 2
        marks.show(3)
        assert settle(watcher, marks) == 5


def test_an_id_that_never_appears_stops_holding_the_horizon(
    watcher: EventWatcher, marks: Marks, clock: Clock
) -> None:
    marks.show(1, 2, 4)
    with watcher.following():
        assert settle(watcher, marks) == 2
        clock.now += GAP_WAIT_S
        assert settle(watcher, marks) == 4


def test_followers_are_woken_only_by_news_and_learn_which_tasks_have_some(
    watcher: EventWatcher, marks: Marks
) -> None:
    marks.show(1, 2)
    with watcher.following():
        horizon = settle(watcher, marks)
        assert watcher.wait(horizon, 0.05) == horizon  # nothing new: the wait times out
        marks.show(3)
        assert watcher.wait(horizon, 5.0) == 3
        assert watcher.may_have_news("task-1", horizon)
        assert not watcher.may_have_news("task-0", horizon)


def test_the_watcher_reads_nothing_without_followers(watcher: EventWatcher, marks: Marks) -> None:
    marks.show(1)
    with watcher.following():
        settle(watcher, marks)
    threading.Event().wait(0.05)
    reads = marks.reads
    threading.Event().wait(0.1)
    assert marks.reads == reads
    assert watcher.horizon(0.0) is None
