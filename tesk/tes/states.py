"""TES task states and the one table of transitions every store enforces."""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    UNKNOWN = "UNKNOWN"
    QUEUED = "QUEUED"
    INITIALIZING = "INITIALIZING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    COMPLETE = "COMPLETE"
    EXECUTOR_ERROR = "EXECUTOR_ERROR"
    SYSTEM_ERROR = "SYSTEM_ERROR"
    CANCELED = "CANCELED"
    PREEMPTED = "PREEMPTED"
    CANCELING = "CANCELING"


TERMINAL: frozenset[State] = frozenset(
    {State.COMPLETE, State.EXECUTOR_ERROR, State.SYSTEM_ERROR, State.CANCELED, State.PREEMPTED}
)

ACTIVE: frozenset[State] = frozenset({State.QUEUED, State.INITIALIZING, State.RUNNING})
"""States in which a task may still make progress (CANCELING only winds down)."""

STARTED: frozenset[State] = frozenset({State.INITIALIZING, State.RUNNING})
"""Active states of a task that a backend has taken up: something runs it."""

UNFINISHED: frozenset[State] = ACTIVE | {State.CANCELING}
"""Every state but the final ones: the backend still owns something of the task."""

FAILED: frozenset[State] = frozenset({State.EXECUTOR_ERROR, State.SYSTEM_ERROR, State.PREEMPTED})
"""Final states of a task that did not complete and was not cancelled."""

TES_1_0_STATES: dict[State, State] = {
    # Still winding down: a client waiting for a final state must keep waiting.
    State.CANCELING: State.RUNNING,
    # Final, and not the task's own fault: the nearest TES 1.0 ending.
    State.PREEMPTED: State.SYSTEM_ERROR,
}
"""What TES 1.0 clients (under /v1) are shown for the TES 1.1 states they cannot parse.

TES 1.0 had neither CANCELING nor PREEMPTED; docs/api.md says why these stand in for them.
"""

_ENDINGS = frozenset({State.COMPLETE, State.EXECUTOR_ERROR, State.SYSTEM_ERROR, State.PREEMPTED})

# Progress may skip states (a report can be lost or coalesced), but never goes back; a task that is
# being cancelled can only end CANCELED; terminal states never change.
TRANSITIONS: dict[State, frozenset[State]] = {
    State.QUEUED: frozenset({State.INITIALIZING, State.RUNNING, State.CANCELING} | _ENDINGS),
    State.INITIALIZING: frozenset({State.RUNNING, State.CANCELING} | _ENDINGS),
    State.RUNNING: frozenset({State.CANCELING} | _ENDINGS),
    State.CANCELING: frozenset({State.CANCELED}),
}


def is_terminal(state: State) -> bool:
    return state in TERMINAL


def can_transition(current: State, new: State) -> bool:
    """Whether a task in `current` may move to `new`.

    Staying in the same non-terminal state is allowed (a newer progress report with more logs).
    """
    if current == new:
        return current not in TERMINAL
    return new in TRANSITIONS.get(current, frozenset())


def previous_states(new: State) -> frozenset[State]:
    """Every state from which `new` may be reached, for compare-and-set updates."""
    return frozenset(s for s in State if can_transition(s, new))


def as_tes_1_0(state: State) -> State:
    """`state` as a TES 1.0 client is shown it."""
    return TES_1_0_STATES.get(state, state)


def shown_to_tes_1_0_as(state: State) -> frozenset[State]:
    """The states a TES 1.0 client is shown as `state` (none for CANCELING and PREEMPTED)."""
    return frozenset(s for s in State if as_tes_1_0(s) == state)
