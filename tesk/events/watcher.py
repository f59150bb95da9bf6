"""One watcher of the store's new events per API process, which wakes the followers.

Followers of task events must not each ask the database every poll interval: a few hundred of them
would cost a few hundred queries a second for nothing. One thread per process (started by the
first follower, idle again when the last one leaves) reads the ids of new events every
`streams.poll_interval_s`, one indexed range read, and wakes the followers only when there are
some. Each follower then reads its own new events; a follower of one task only when its task has
new ones.

The order of commits. Event ids come from SQLite's AUTOINCREMENT under the database's single
write lock, so they commit in order there. On PostgreSQL they come from a sequence when the row
is inserted, and transactions commit in any order: id 104 may be visible while 103 is still being
committed, and a follower that read 104 and resumed after it would skip 103 for ever. The watcher
therefore keeps a `horizon`: the highest id up to which every id is visible. It only moves past a
missing id once that id appears, or once it has been missing for GAP_WAIT_S (the id of a
transaction that rolled back never appears; TESK's write transactions last milliseconds, so a
missing id is either committed within a poll or lost). Followers read events up to the horizon
and never above, so every stream is in id order without holes and `Last-Event-ID` resumption
skips nothing. The price is that an event just behind a missing id arrives one poll later. This
keeps the writers free (no lock that would order all commits of all replicas).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tesk.store.base import StoreUnavailable, TaskStore

logger = logging.getLogger(__name__)

GAP_WAIT_S = 5.0
"""How long a missing event id holds the horizon back before it counts as rolled back."""

START_WINDOW = 1000
"""How many of the newest ids a watcher re-checks when it starts (some may still be committing)."""

_MARKS_PER_READ = 5000
_REMEMBERED_TASKS = 100_000


class EventWatcher:
    def __init__(
        self,
        store: TaskStore,
        poll_interval_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,  # how long an id has been missing
    ) -> None:
        self._store = store
        self._interval = poll_interval_s
        self._clock = clock
        self._condition = threading.Condition()
        self._followers = 0
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self._horizon: int | None = None  # None: not known yet (no follower, or not read yet)
        self._base = 0  # the horizon the watcher started at: what it knows of began there
        self._latest: OrderedDict[str, int] = OrderedDict()  # task id -> its newest event id
        self._forgotten = 0  # the highest id of a task dropped from _latest
        self._gaps: dict[int, float] = {}  # missing id -> when first missed
        self.polls = 0

    @contextmanager
    def following(self) -> Iterator[None]:
        """Count a follower for as long as the block runs (the watcher works while any does)."""
        with self._condition:
            self._followers += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="tesk-event-watcher", daemon=True
                )
                self._thread.start()
            self._condition.notify_all()
        try:
            yield
        finally:
            with self._condition:
                self._followers -= 1

    def horizon(self, timeout_s: float) -> int | None:
        """Every event up to this id is visible (None: not known within `timeout_s`)."""
        deadline = time.monotonic() + timeout_s
        with self._condition:
            while self._horizon is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._condition.wait(left)
            return self._horizon

    def wait(self, seen: int, timeout_s: float) -> int:
        """The horizon once it is above `seen`, or after `timeout_s` (then possibly `seen`)."""
        deadline = time.monotonic() + timeout_s
        with self._condition:
            while self._horizon is None or self._horizon <= seen:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._condition.wait(left)
            return seen if self._horizon is None else max(seen, self._horizon)

    def may_have_news(self, task_id: str, seen: int) -> bool:
        """Whether `task_id` may have events above `seen` (up to the horizon).

        False only when the watcher knows it has none: it has watched every id since `seen`.
        """
        with self._condition:
            if seen < self._base or seen < self._forgotten:
                return True
            return self._latest.get(task_id, 0) > seen

    def stop(self) -> None:
        self._stopped.set()
        with self._condition:
            self._condition.notify_all()

    # -- the watcher's thread ----------------------------------------------------------------

    def _run(self) -> None:
        failing = False
        while not self._stopped.is_set():
            with self._condition:
                while self._followers == 0 and not self._stopped.is_set():
                    self._forget_all()  # nobody follows: start afresh with the next follower
                    self._condition.wait()
            try:
                self._poll()
                if failing:
                    logger.info("task events: the store answers again")
                failing = False
            except StoreUnavailable as exc:
                if not failing:
                    logger.warning("task events: cannot read new events: %s", exc)
                failing = True
            except Exception:
                logger.exception("task events: reading new events failed")
            self._stopped.wait(self._interval)

    def _poll(self) -> None:
        self.polls += 1
        with self._condition:
            horizon = self._horizon
        if horizon is None:
            horizon = max(0, self._store.last_event_id() - START_WINDOW)
            with self._condition:
                self._base = horizon
        while True:
            marks = self._store.event_marks(horizon, _MARKS_PER_READ)
            now = self._clock()
            advanced = horizon
            seen: list[tuple[str, int]] = []
            for mark in marks:
                missing = advanced + 1
                if mark.id > missing:
                    first = self._gaps.setdefault(missing, now)
                    if now - first < GAP_WAIT_S:
                        break
                    logger.info("task events: ids %d..%d never appeared", missing, mark.id - 1)
                    del self._gaps[missing]
                seen.append((mark.task_id, mark.id))
                advanced = mark.id
            with self._condition:
                for task_id, event_id in seen:
                    self._remember(task_id, event_id)
                first_poll = self._horizon is None
                self._horizon = advanced
                if advanced > horizon or first_poll:
                    self._condition.notify_all()
            if len(marks) < _MARKS_PER_READ or advanced == horizon:
                return
            horizon = advanced

    def _remember(self, task_id: str, event_id: int) -> None:
        self._latest[task_id] = event_id
        self._latest.move_to_end(task_id)
        while len(self._latest) > _REMEMBERED_TASKS:
            _, dropped = self._latest.popitem(last=False)
            self._forgotten = max(self._forgotten, dropped)

    def _forget_all(self) -> None:
        self._horizon = None
        self._latest.clear()
        self._forgotten = 0
        self._gaps.clear()
