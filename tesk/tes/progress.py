"""Progress reports and the one reducer that folds them into a stored task.

The engine emits cumulative snapshots numbered by a monotonically increasing `seq`; the API side
(cancel, reconciler) emits out-of-band reports without a sequence. Every store applies reports
through `reduce()` with compare-and-set, so duplicated, late or reordered reports are harmless.

A task may run more than once (tesk/tes/retries.py): each run is an attempt, numbered from 1, and
a report that names its attempt applies to that attempt only. A late report of an attempt that
was retried is ignored whatever its `seq`, so the sequence simply goes on across attempts.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from enum import StrEnum

from tesk.tes.models import FileType, TaskLog
from tesk.tes.states import State, can_transition


class Cause(StrEnum):
    """Why an attempt ended without the task's own doing, when running it again may help."""

    CAPACITY_LOST = "capacity_lost"  # PREEMPTED: evicted, node lost, its runner died
    SYSTEM_ERROR = "system_error"  # SYSTEM_ERROR: the runtime could not run the task at all


@dataclass(frozen=True)
class AttemptFailure:
    """How an attempt ended PREEMPTED or SYSTEM_ERROR: the cause and, in words, what happened."""

    cause: Cause
    detail: str


@dataclass(frozen=True)
class Progress:
    """A change to a task's state and log.

    seq: the engine's sequence number, or None for an out-of-band report (cancel, reconciler).
    log: the engine's full snapshot of the task's TaskLog, or None to keep the stored one.
    system_logs: lines to append to the TaskLog's system_logs.
    input_types: the type of every input as found when staging (TES asks the server to fill it in).
    attempt: the attempt the report is about, or None for whichever attempt is current (cancel).
    failure: why the attempt ended, for a report of PREEMPTED or SYSTEM_ERROR that the retry
      policy may retry (None: never retried).
    """

    state: State
    seq: int | None = None
    log: TaskLog | None = None
    system_logs: tuple[str, ...] = ()
    input_types: tuple[FileType, ...] | None = None
    attempt: int | None = None
    failure: AttemptFailure | None = None


@dataclass(frozen=True)
class TaskProgressState:
    """What the reducer reads and writes of a stored task."""

    state: State
    seq: int
    log: TaskLog | None
    input_types: tuple[FileType, ...] | None = None
    attempt: int = 1


def reduce(current: TaskProgressState, report: Progress) -> TaskProgressState | None:
    """Fold `report` into `current`; None when the report must be ignored.

    A report is ignored when it is about another attempt than the current one, when it is older
    than what was applied (its seq is not newer) or when the state table forbids the transition.
    System log lines are merged so none is lost or repeated.
    """
    if report.attempt is not None and report.attempt != current.attempt:
        return None
    if report.seq is not None and report.seq <= current.seq:
        return None
    if not can_transition(current.state, report.state):
        return None
    base = report.log if report.log is not None else current.log
    log = _merge_system_logs(base, current.log, report.system_logs)
    return TaskProgressState(
        state=report.state,
        seq=report.seq if report.seq is not None else current.seq,
        log=log,
        input_types=report.input_types if report.input_types is not None else current.input_types,
        attempt=current.attempt,
    )


def _merge_system_logs(
    base: TaskLog | None, previous: TaskLog | None, extra: tuple[str, ...]
) -> TaskLog | None:
    earlier = list(previous.system_logs or []) if previous is not None else []
    fresh = list(base.system_logs or []) if base is not None else []
    # A snapshot repeats every line it reported before: only its lines beyond those are new. Lines
    # are counted, not just looked up, so an engine that logs the same line twice keeps both.
    unmatched = Counter(earlier)
    lines = list(earlier)
    for line in fresh:
        if unmatched[line] > 0:
            unmatched[line] -= 1
        else:
            lines.append(line)
    # Out-of-band lines (cancel, reconciler) may be delivered twice: they are added once.
    lines += [line for line in dict.fromkeys(extra) if line not in lines]
    if base is None and not lines:
        return None
    merged = base.model_copy(deep=True) if base is not None else TaskLog()
    if lines:
        merged.system_logs = lines
    return merged
