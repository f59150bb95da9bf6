"""The TES state table: what may follow what."""

from __future__ import annotations

import pytest

from tesk.tes.states import (
    ACTIVE,
    TERMINAL,
    State,
    can_transition,
    is_terminal,
    previous_states,
)

S = State
# Every allowed change between two different states, written out in full: the table as the design
# describes it (progress may skip states but never goes back; cancelling ends CANCELED; terminal
# states never change).
ALLOWED = {
    (S.QUEUED, S.INITIALIZING),
    (S.QUEUED, S.RUNNING),
    (S.QUEUED, S.CANCELING),
    (S.QUEUED, S.COMPLETE),
    (S.QUEUED, S.EXECUTOR_ERROR),
    (S.QUEUED, S.SYSTEM_ERROR),
    (S.QUEUED, S.PREEMPTED),
    (S.INITIALIZING, S.RUNNING),
    (S.INITIALIZING, S.CANCELING),
    (S.INITIALIZING, S.COMPLETE),
    (S.INITIALIZING, S.EXECUTOR_ERROR),
    (S.INITIALIZING, S.SYSTEM_ERROR),
    (S.INITIALIZING, S.PREEMPTED),
    (S.RUNNING, S.CANCELING),
    (S.RUNNING, S.COMPLETE),
    (S.RUNNING, S.EXECUTOR_ERROR),
    (S.RUNNING, S.SYSTEM_ERROR),
    (S.RUNNING, S.PREEMPTED),
    (S.CANCELING, S.CANCELED),
}


@pytest.mark.parametrize("current", list(State))
@pytest.mark.parametrize("new", list(State))
def test_the_transition_table(current: State, new: State) -> None:
    expected = current not in TERMINAL if current == new else (current, new) in ALLOWED
    assert can_transition(current, new) is expected


def test_terminal_states() -> None:
    assert {S.COMPLETE, S.EXECUTOR_ERROR, S.SYSTEM_ERROR, S.CANCELED, S.PREEMPTED} == TERMINAL
    assert all(is_terminal(s) for s in TERMINAL)
    assert not any(is_terminal(s) for s in set(State) - TERMINAL)


def test_active_states_can_still_end_every_way_but_canceled() -> None:
    assert {S.QUEUED, S.INITIALIZING, S.RUNNING} == ACTIVE
    assert not ACTIVE & TERMINAL
    for state in ACTIVE:
        assert {s for s in TERMINAL if can_transition(state, s)} == TERMINAL - {S.CANCELED}
        assert can_transition(state, S.CANCELING)


def test_a_canceled_task_got_there_through_canceling() -> None:
    assert previous_states(S.CANCELED) == {S.CANCELING}


@pytest.mark.parametrize(
    ("new", "previous"),
    [
        (S.QUEUED, {S.QUEUED}),
        (S.INITIALIZING, {S.QUEUED, S.INITIALIZING}),
        (S.RUNNING, {S.QUEUED, S.INITIALIZING, S.RUNNING}),
        (S.COMPLETE, {S.QUEUED, S.INITIALIZING, S.RUNNING}),
        (S.CANCELING, {S.QUEUED, S.INITIALIZING, S.RUNNING, S.CANCELING}),
        (S.UNKNOWN, {S.UNKNOWN}),
    ],
)
def test_previous_states(new: State, previous: set[State]) -> None:
    assert previous_states(new) == previous
