"""The progress reducer every store applies."""

from __future__ import annotations

import pytest

from tesk.tes.models import ExecutorLog, FileType, TaskLog
from tesk.tes.progress import Progress, TaskProgressState, reduce
from tesk.tes.states import State


def log(*lines: str, exit_code: int | None = None) -> TaskLog:
    logs = [] if exit_code is None else [ExecutorLog(exit_code=exit_code)]
    return TaskLog(logs=logs, system_logs=list(lines) or None)


def stored(state: State = State.RUNNING, seq: int = 3, *lines: str) -> TaskProgressState:
    return TaskProgressState(state, seq, log(*lines) if lines else None)


def lines_of(result: TaskProgressState | None) -> list[str] | None:
    assert result is not None
    return None if result.log is None else result.log.system_logs


def test_a_newer_report_is_applied() -> None:
    snapshot = log("running", exit_code=0)
    result = reduce(stored(), Progress(State.COMPLETE, seq=4, log=snapshot))

    assert result is not None
    assert (result.state, result.seq) == (State.COMPLETE, 4)
    assert result.log == snapshot


@pytest.mark.parametrize("seq", [0, 2, 3])
def test_a_report_that_is_not_newer_is_ignored(seq: int) -> None:
    assert reduce(stored(), Progress(State.COMPLETE, seq=seq)) is None


def test_an_out_of_band_report_keeps_the_sequence() -> None:
    result = reduce(stored(seq=7), Progress(State.CANCELING))

    assert result is not None
    assert (result.state, result.seq) == (State.CANCELING, 7)


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (State.RUNNING, State.QUEUED),
        (State.COMPLETE, State.RUNNING),
        (State.COMPLETE, State.COMPLETE),
        (State.CANCELING, State.COMPLETE),
        (State.QUEUED, State.CANCELED),
    ],
)
def test_a_forbidden_transition_is_ignored(current: State, new: State) -> None:
    assert reduce(stored(current), Progress(new, seq=10)) is None
    assert reduce(stored(current), Progress(new)) is None


def test_the_same_state_with_a_newer_snapshot_is_applied() -> None:
    result = reduce(stored(State.RUNNING, 1), Progress(State.RUNNING, seq=2, log=log(exit_code=0)))

    assert result is not None
    assert result.log is not None
    assert [e.exit_code for e in result.log.logs] == [0]


def test_a_report_without_a_log_keeps_the_stored_one() -> None:
    current = TaskProgressState(State.RUNNING, 1, log("a", exit_code=1))

    result = reduce(current, Progress(State.EXECUTOR_ERROR, seq=2))

    assert result is not None
    assert result.log == current.log


def test_system_logs_keep_stored_lines_that_a_snapshot_does_not_know() -> None:
    current = stored(State.RUNNING, 1, "staging inputs", "pod scheduled")

    result = reduce(current, Progress(State.RUNNING, seq=2, log=log("staging inputs", "done")))

    assert lines_of(result) == ["staging inputs", "pod scheduled", "done"]


def test_system_logs_keep_a_line_an_engine_repeats() -> None:
    first = reduce(stored(seq=0), Progress(State.RUNNING, seq=1, log=log("retrying upload")))
    assert first is not None

    second = reduce(
        first, Progress(State.RUNNING, seq=2, log=log("retrying upload", "retrying upload"))
    )
    again = reduce(
        second or first,
        Progress(State.RUNNING, seq=3, log=log("retrying upload", "retrying upload", "ok")),
    )

    assert lines_of(second) == ["retrying upload", "retrying upload"]
    assert lines_of(again) == ["retrying upload", "retrying upload", "ok"]


def test_out_of_band_lines_are_appended_once() -> None:
    current = stored(State.RUNNING, 1, "started")

    once = reduce(current, Progress(State.CANCELING, system_logs=("cancel", "cancel")))
    twice = reduce(once or current, Progress(State.CANCELING, system_logs=("cancel",)))

    assert lines_of(once) == ["started", "cancel"]
    assert lines_of(twice) == ["started", "cancel"]


def test_lines_alone_make_a_log() -> None:
    result = reduce(stored(State.QUEUED, 0), Progress(State.SYSTEM_ERROR, system_logs=("boom",)))

    assert result is not None
    assert result.log is not None
    assert result.log.dump() == {"logs": [], "outputs": [], "system_logs": ["boom"]}


def test_no_log_and_no_lines_stay_no_log() -> None:
    result = reduce(stored(State.QUEUED, 0), Progress(State.INITIALIZING, seq=1))

    assert result is not None
    assert result.log is None


def test_merged_lines_are_serialised() -> None:
    result = reduce(stored(State.RUNNING, 1, "kept"), Progress(State.RUNNING, seq=2, log=log()))

    assert result is not None
    assert result.log is not None
    assert result.log.dump()["system_logs"] == ["kept"]


def test_the_reducer_changes_neither_input() -> None:
    current = stored(State.RUNNING, 1, "a")
    snapshot = log("b")
    report = Progress(State.RUNNING, seq=2, log=snapshot, system_logs=("c",))

    result = reduce(current, report)

    assert lines_of(result) == ["a", "b", "c"]
    assert current.log is not None
    assert current.log.system_logs == ["a"]
    assert snapshot.system_logs == ["b"]


def test_input_types_of_a_report_replace_the_stored_ones() -> None:
    current = TaskProgressState(State.INITIALIZING, 1, None, (FileType.FILE,))
    types = (FileType.DIRECTORY, FileType.FILE)

    replaced = reduce(current, Progress(State.RUNNING, seq=2, input_types=types))
    kept = reduce(current, Progress(State.RUNNING, seq=2))

    assert replaced is not None
    assert replaced.input_types == types
    assert kept is not None
    assert kept.input_types == (FileType.FILE,)
