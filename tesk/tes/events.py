"""Task events: what changed in a task, derived from the task before and after a change.

A store writes the events of a change in the same transaction as the change, so a follower of
the events sees exactly the changes the store holds, in order, from any API replica. The events of
one change are derived here, once for every store, by comparing the task's state and TaskLog
before and after.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from tesk.tes.models import ExecutorLog, TaskLog, epoch_seconds
from tesk.tes.states import TERMINAL, State

RUNNING_EXECUTOR = "running_executor"
"""TaskLog.metadata key: the index of the executor running now (absent between executors)."""
RUNNING_EXECUTOR_START = "running_executor_start_time"
"""TaskLog.metadata key: when that executor started (RFC 3339)."""


class EventKind(StrEnum):
    STATE = "state"  # the task reached `state` (QUEUED at create, then every change)
    EXECUTOR_STARTED = "executor_started"
    EXECUTOR_ENDED = "executor_ended"


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event before the store numbered it. `state` is the task's state with the event."""

    kind: EventKind
    state: State
    time_us: int
    executor: int | None = None
    exit_code: int | None = None


@dataclass(frozen=True, slots=True)
class TaskEvent:
    """A stored event: `id` grows with every event the store writes (across all tasks)."""

    id: int
    task_id: str
    kind: EventKind
    state: State
    time_us: int
    executor: int | None = None
    exit_code: int | None = None

    @property
    def terminal(self) -> bool:
        """Whether this event ends the task's history (its final state)."""
        return self.kind is EventKind.STATE and self.state in TERMINAL


def created(state: State, created_us: int) -> list[NewEvent]:
    """The event of a new task: its first state (QUEUED), at its creation time."""
    return [NewEvent(EventKind.STATE, state, created_us)]


def changed(
    old_state: State,
    old_log: TaskLog | None,
    new_state: State,
    new_log: TaskLog | None,
    now_us: int,
) -> list[NewEvent]:
    """The events of one change of a task, in the order they happened.

    Executors first (they ran before the state the same report carries, e.g. the last executor
    ended, then COMPLETE), then the new state. An executor started when the engine names it the
    running one (RUNNING_EXECUTOR in the log's metadata), or else when its ExecutorLog appears;
    it ended when its log gets an end time. The engine writes an executor's ExecutorLog once it
    ended (TES requires its exit code), so without that announcement, e.g. when a later report
    superseded it before it was stored, both events come with the one report. A task sent back
    to QUEUED starts a new attempt: the executor logs of the attempt before are not compared
    with the new ones.
    """
    events: list[NewEvent] = []
    new_attempt = new_state is State.QUEUED and old_state is not State.QUEUED
    # A QUEUED task has run nothing of its attempt: whatever log it keeps is of an attempt before.
    before = [] if old_log is None or old_state is State.QUEUED else old_log.logs
    after = new_log.logs if new_log is not None and new_state is not State.QUEUED else []
    same_attempt = old_log is not None and old_state is not State.QUEUED
    if len(after) < len(before):
        before = []  # the log was replaced by one of another attempt
        same_attempt = False
    # The executor an earlier report named as running: its start is told already.
    announced = _running(old_log) if same_attempt else None
    for index, entry in enumerate(after):
        previous = before[index] if index < len(before) else None
        if previous is None and announced != index:
            time_us = _micros(entry.start_time, now_us)
            events.append(NewEvent(EventKind.EXECUTOR_STARTED, new_state, time_us, index))
        if _ended(entry) and (previous is None or not _ended(previous)):
            time_us = _micros(entry.end_time, now_us)
            events.append(
                NewEvent(EventKind.EXECUTOR_ENDED, new_state, time_us, index, entry.exit_code)
            )
    if new_state != old_state or new_attempt:
        events.append(NewEvent(EventKind.STATE, new_state, now_us))
    # An executor that starts comes after the state it starts in (RUNNING, with the same report).
    running = _running(new_log) if new_state is not State.QUEUED else None
    if running is not None and running >= len(after) and running != announced:
        assert new_log is not None
        start = (new_log.metadata or {}).get(RUNNING_EXECUTOR_START)
        events.append(
            NewEvent(EventKind.EXECUTOR_STARTED, new_state, _micros(start, now_us), running)
        )
    return events


def _running(log: TaskLog | None) -> int | None:
    """The executor the log's metadata says runs now."""
    value = (log.metadata or {}).get(RUNNING_EXECUTOR) if log is not None else None
    return int(value) if value is not None and value.isdigit() else None


def _ended(entry: ExecutorLog) -> bool:
    return entry.end_time is not None


def _micros(moment: str | None, default_us: int) -> int:
    seconds = epoch_seconds(moment)
    return default_us if seconds is None else round(seconds * 1_000_000)
