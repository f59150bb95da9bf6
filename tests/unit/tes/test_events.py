"""The events of one change of a task (tesk.tes.events), as every store derives them."""

from __future__ import annotations

from tesk.tes.events import EventKind, NewEvent, changed, created
from tesk.tes.models import ExecutorLog, TaskLog
from tesk.tes.states import State

NOW = 1_800_000_000_000_000
T0 = "2026-01-01T00:00:00.000000Z"
T1 = "2026-01-01T00:00:01.500000Z"


def kinds(events: list[NewEvent]) -> list[tuple[str, str, int | None]]:
    return [(e.kind.value, e.state.value, e.executor) for e in events]


def test_a_new_task_has_its_first_state_at_its_creation_time() -> None:
    assert created(State.QUEUED, 42) == [NewEvent(EventKind.STATE, State.QUEUED, 42)]


def test_a_state_change_is_one_event_now() -> None:
    assert changed(State.QUEUED, None, State.INITIALIZING, None, NOW) == [
        NewEvent(EventKind.STATE, State.INITIALIZING, NOW)
    ]


def test_nothing_changed_is_no_event() -> None:
    log = TaskLog(logs=[ExecutorLog(start_time=T0, end_time=T1, exit_code=0)])
    assert changed(State.RUNNING, log, State.RUNNING, log.model_copy(deep=True), NOW) == []


def test_executors_come_before_the_state_of_the_same_report_with_their_own_times() -> None:
    log = TaskLog(logs=[ExecutorLog(start_time=T0, end_time=T1, exit_code=2)])

    found = changed(State.RUNNING, TaskLog(), State.EXECUTOR_ERROR, log, NOW)

    assert found == [
        NewEvent(EventKind.EXECUTOR_STARTED, State.EXECUTOR_ERROR, 1_767_225_600_000_000, 0),
        NewEvent(EventKind.EXECUTOR_ENDED, State.EXECUTOR_ERROR, 1_767_225_601_500_000, 0, 2),
        NewEvent(EventKind.STATE, State.EXECUTOR_ERROR, NOW),
    ]


def test_an_executor_without_times_is_dated_now() -> None:
    log = TaskLog(logs=[ExecutorLog(exit_code=0)])
    found = changed(State.RUNNING, None, State.RUNNING, log, NOW)
    assert [(e.kind, e.time_us) for e in found] == [(EventKind.EXECUTOR_STARTED, NOW)]


def test_a_task_sent_back_to_queued_starts_a_new_attempt() -> None:
    done = ExecutorLog(start_time=T0, end_time=T1, exit_code=0)
    tried = TaskLog(logs=[done])

    back = changed(State.RUNNING, tried, State.QUEUED, None, NOW)
    # The retries store may keep the attempt's log with the task: still one QUEUED event.
    kept = changed(State.RUNNING, tried, State.QUEUED, tried, NOW)
    again = changed(State.QUEUED, None, State.RUNNING, TaskLog(logs=[done]), NOW)

    assert kinds(back) == [("state", "QUEUED", None)]
    assert kinds(kept) == [("state", "QUEUED", None)]
    assert kinds(again) == [
        ("executor_started", "RUNNING", 0),
        ("executor_ended", "RUNNING", 0),
        ("state", "RUNNING", None),
    ]


def test_a_shorter_log_is_another_attempt_whose_executors_are_new() -> None:
    two = TaskLog(
        logs=[ExecutorLog(start_time=T0, end_time=T1, exit_code=0), ExecutorLog(exit_code=0)]
    )
    one = TaskLog(logs=[ExecutorLog(start_time=T0, exit_code=0)])
    assert kinds(changed(State.RUNNING, two, State.RUNNING, one, NOW)) == [
        ("executor_started", "RUNNING", 0)
    ]


def test_the_next_attempt_is_new_even_when_the_last_attempts_log_was_kept() -> None:
    done = TaskLog(logs=[ExecutorLog(start_time=T0, end_time=T1, exit_code=0)])
    assert kinds(changed(State.QUEUED, done, State.RUNNING, done, NOW)) == [
        ("executor_started", "RUNNING", 0),
        ("executor_ended", "RUNNING", 0),
        ("state", "RUNNING", None),
    ]


def announced(index: int, start: str = T0, logs: list[ExecutorLog] | None = None) -> TaskLog:
    return TaskLog(
        logs=logs or [],
        metadata={"running_executor": str(index), "running_executor_start_time": start},
    )


def test_an_executor_named_running_has_started_before_its_log_exists() -> None:
    found = changed(State.RUNNING, TaskLog(), State.RUNNING, announced(0), NOW)
    assert found == [NewEvent(EventKind.EXECUTOR_STARTED, State.RUNNING, 1_767_225_600_000_000, 0)]
    # Its end then brings the end alone; a report repeating the announcement brings nothing.
    assert changed(State.RUNNING, announced(0), State.RUNNING, announced(0), NOW) == []
    ended = TaskLog(logs=[ExecutorLog(start_time=T0, end_time=T1, exit_code=0)])
    assert kinds(changed(State.RUNNING, announced(0), State.RUNNING, ended, NOW)) == [
        ("executor_ended", "RUNNING", 0)
    ]


def test_the_next_executor_named_running_starts_after_the_last_ended() -> None:
    first = ExecutorLog(start_time=T0, end_time=T1, exit_code=0)
    found = changed(State.RUNNING, announced(0), State.RUNNING, announced(1, T1, [first]), NOW)
    assert kinds(found) == [("executor_ended", "RUNNING", 0), ("executor_started", "RUNNING", 1)]


def test_a_superseded_announcement_falls_back_to_the_log() -> None:
    # The report naming executor 0 running was never stored: its log brings start and end.
    ended = TaskLog(logs=[ExecutorLog(start_time=T0, end_time=T1, exit_code=0)])
    assert kinds(changed(State.RUNNING, TaskLog(), State.RUNNING, ended, NOW)) == [
        ("executor_started", "RUNNING", 0),
        ("executor_ended", "RUNNING", 0),
    ]


def test_an_announcement_of_an_earlier_attempt_does_not_count() -> None:
    ended = TaskLog(logs=[ExecutorLog(start_time=T0, end_time=T1, exit_code=0)])
    found = changed(State.QUEUED, announced(0), State.RUNNING, ended, NOW)
    assert [e.kind for e in found].count(EventKind.EXECUTOR_STARTED) == 1


def test_an_executor_starting_with_the_change_to_running_comes_after_it() -> None:
    found = changed(State.INITIALIZING, TaskLog(), State.RUNNING, announced(0), NOW)
    assert kinds(found) == [("state", "RUNNING", None), ("executor_started", "RUNNING", 0)]
