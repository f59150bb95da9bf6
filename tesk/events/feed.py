"""Task events for the API: who may follow what, and the followers themselves.

A follower is a generator of TaskEvents and keepalive ticks (None), asleep between them on the
process's EventWatcher: it reads the store only when the watcher saw new events (a follower of one
task: new events of that task), and only the events above what it delivered, up to the watcher's
horizon (tesk/events/watcher.py: below it no event can still appear). The checks that can fail
(unknown task, bad filters) run before the generator is returned, so that they are answered with
an HTTP error instead of an empty stream.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass

from tesk.auth.identity import Identity
from tesk.events.watcher import EventWatcher
from tesk.service import may_see
from tesk.store.base import EventQuery, StoreUnavailable, TaskStore
from tesk.tes.errors import InvalidRequest, ServiceUnavailable, TaskNotFound
from tesk.tes.events import EventKind, TaskEvent
from tesk.tes.states import TERMINAL, State
from tesk.tes.validation import parse_state, tag_filter

logger = logging.getLogger(__name__)

Follower = Generator[TaskEvent | None, None, None]
"""Events in id order; None when nothing was sent for a keepalive interval."""

_PAGE = 500


@dataclass(frozen=True)
class EventFilters:
    """ListTasks' filters, as the stream of every task's events takes them."""

    state: str | None = None
    name_prefix: str | None = None
    tag_keys: Sequence[str] = ()
    tag_values: Sequence[str] = ()


def parse_last_event_id(value: str | None, where: str) -> int | None:
    """A Last-Event-ID (header or query parameter): an event id this service sent, or 0."""
    if value is None or value.strip() == "":
        return None
    text = value.strip()
    if not text.isdigit() or len(text) > 18:
        raise InvalidRequest(
            f"{where}: {value[:40]!r} is not an event id (the `id:` of an event this service "
            "sent, or 0 for every stored event)"
        )
    return int(text)


class EventFeed:
    def __init__(
        self,
        store: TaskStore,
        watcher: EventWatcher,
        *,
        keepalive_s: float,
        retry_s: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._store = store
        self._watcher = watcher
        self._keepalive = keepalive_s
        self._retry = retry_s
        self._clock = clock
        self._sleep = sleep

    def task_events(
        self, task_id: str, caller: Identity | None, last_event_id: int | None = None
    ) -> Follower | None:
        """The events of one task from its first (or after `last_event_id`), ending after its
        final state; None when the task ended and nothing is left after `last_event_id` (a
        client reconnecting to a finished stream). Raises TaskNotFound for an unknown task or
        one `caller` may not see."""
        after = last_event_id or 0
        try:
            found = self._store.read(task_id, with_documents=False)
            if found is None or not may_see(caller, found.owner):
                raise TaskNotFound(task_id)
            if found.state not in TERMINAL:
                return self._follow_task(task_id, found.state, after)
            # A finished task has all its events stored (the last one with its final state):
            # they are read as they are, without waiting for the watcher.
            rest = self._store.events(EventQuery(task_id=task_id, after=after, limit=10_000))
        except StoreUnavailable as exc:
            raise ServiceUnavailable(f"the task store is unavailable: {exc}") from exc
        if not rest and after == 0:
            # A task older than the events table: its state now is all there is to tell.
            rest = [TaskEvent(0, task_id, EventKind.STATE, found.state, time.time_ns() // 1000)]
        return _finished(rest) if rest else None

    def all_events(
        self, filters: EventFilters, caller: Identity | None, last_event_id: int | None = None
    ) -> Follower:
        """The events of every task `caller` may see that match `filters`, after
        `last_event_id` (None: only events from now on). Never ends on its own."""
        query = EventQuery(
            owner=caller.subject if caller is not None and not caller.admin else None,
            state=parse_state(filters.state),
            name_prefix=filters.name_prefix or None,
            tags=tag_filter(filters.tag_keys, filters.tag_values),
            limit=_PAGE,
        )
        return self._follow_all(query, last_event_id)

    # -- followers ---------------------------------------------------------------------------

    def _follow_task(self, task_id: str, state: State, after: int) -> Follower:
        with self._watcher.following():
            quiet = _Quiet(self._clock())
            horizon = yield from self._first_horizon(quiet)
            query = EventQuery(task_id=task_id, after=after, limit=_PAGE)
            sent, ended = yield from self._read(query, horizon, quiet)
            if ended:
                return
            if after == 0 and sent == 0 and not self._has_events(task_id):
                # A task older than the events table: its state now is all there is to tell.
                yield TaskEvent(0, task_id, EventKind.STATE, state, time.time_ns() // 1000)
            while True:
                newer = yield from self._next_horizon(horizon, quiet)
                if self._watcher.may_have_news(task_id, horizon):
                    query = dataclasses.replace(query, after=max(horizon, after))
                    _, ended = yield from self._read(query, newer, quiet)
                    if ended:
                        return
                horizon = newer

    def _follow_all(self, query: EventQuery, after: int | None) -> Follower:
        with self._watcher.following():
            quiet = _Quiet(self._clock())
            horizon = yield from self._first_horizon(quiet)
            if after is not None and after < horizon:
                yield from self._read(dataclasses.replace(query, after=after), horizon, quiet)
            elif after is not None:
                horizon = after  # resuming from an id above this replica's horizon: wait for it
            while True:
                newer = yield from self._next_horizon(horizon, quiet)
                yield from self._read(dataclasses.replace(query, after=horizon), newer, quiet)
                horizon = newer

    def _read(
        self, query: EventQuery, up_to: int, quiet: _Quiet
    ) -> Generator[TaskEvent | None, None, tuple[int, bool]]:
        """Send the events of `query` up to `up_to`; (how many, whether the task ended)."""
        sent = 0
        query = dataclasses.replace(query, up_to=up_to)
        while True:
            try:
                page = self._store.events(query)
            except StoreUnavailable as exc:
                # Followers keep following: the store will answer again (and the client's
                # connection is checked by the keepalive meanwhile).
                logger.warning("task events: cannot read events: %s", exc)
                quiet.sent_at = self._clock()
                yield None
                self._sleep(self._retry)
                continue
            for event in page:
                quiet.sent_at = self._clock()
                yield event
                sent += 1
                if query.task_id is not None and event.terminal:
                    return sent, True
            if len(page) < query.limit:
                return sent, False
            query = dataclasses.replace(query, after=page[-1].id)

    def _first_horizon(self, quiet: _Quiet) -> Generator[None, None, int]:
        while True:
            horizon = self._watcher.horizon(quiet.left(self._clock(), self._keepalive))
            if horizon is not None:
                return horizon
            if quiet.due(self._clock(), self._keepalive):
                yield None

    def _next_horizon(self, seen: int, quiet: _Quiet) -> Generator[None, None, int]:
        """The watcher's horizon once above `seen`; a keepalive for every quiet interval."""
        while True:
            newer = self._watcher.wait(seen, quiet.left(self._clock(), self._keepalive))
            if newer > seen:
                return newer
            if quiet.due(self._clock(), self._keepalive):
                yield None

    def _has_events(self, task_id: str) -> bool:
        try:
            return bool(self._store.events(EventQuery(task_id=task_id, limit=1)))
        except StoreUnavailable:
            return True  # say nothing rather than something untrue


def _finished(events: list[TaskEvent]) -> Follower:
    yield from events


@dataclass
class _Quiet:
    """When a stream last sent something (an event or a keepalive)."""

    sent_at: float

    def left(self, now: float, keepalive_s: float) -> float:
        return max(0.0, self.sent_at + keepalive_s - now)

    def due(self, now: float, keepalive_s: float) -> bool:
        if now - self.sent_at < keepalive_s:
            return False
        self.sent_at = now
        return True
