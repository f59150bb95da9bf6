"""The pod/Job status -> TES mapping of the Kubernetes backend, on recorded objects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tesk.backends.kubernetes.status import (
    JobOutcome,
    JobPhase,
    Phase,
    job_outcome,
    pending_reason,
    pod_outcome,
    settle_state,
)
from tesk.tes.states import State

FIXTURES = Path(__file__).with_name("fixtures")


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


@pytest.mark.parametrize(
    ("fixture", "phase", "exit_code", "reason"),
    [
        ("succeeded", Phase.FINISHED, 0, None),
        ("failed-exit-3", Phase.FINISHED, 3, None),
        ("oom-killed", Phase.FINISHED, 137, "OOMKilled"),
        ("evicted", Phase.PREEMPTED, None, "TerminationByKubelet"),
        ("node-lost", Phase.PREEMPTED, None, "DeletionByTaintManager"),
        ("preempted-by-scheduler", Phase.PREEMPTED, None, "PreemptionByScheduler"),
        ("deadline-exceeded", Phase.FINISHED, 137, "DeadlineExceeded"),
        ("start-error", Phase.FAILED, None, "/bin/sh"),
        ("unschedulable", Phase.PENDING, None, "Insufficient nvidia.com/gpu"),
        ("image-pull-backoff", Phase.PENDING, None, "ImagePullBackOff"),
        ("container-creating", Phase.PENDING, None, "ContainerCreating"),
        ("running", Phase.RUNNING, None, None),
        ("failed-without-container", Phase.PREEMPTED, None, "no healthy devices"),
    ],
)
def test_pod_outcome(fixture: str, phase: Phase, exit_code: int | None, reason: str | None) -> None:
    outcome = pod_outcome(load(fixture), "executor")
    assert outcome.phase is phase
    assert outcome.exit_code == exit_code
    if reason is None:
        assert outcome.reason is None
    else:
        assert outcome.reason is not None
        assert reason in outcome.reason


def test_finished_pods_carry_the_container_times() -> None:
    outcome = pod_outcome(load("failed-exit-3"), "executor")
    assert (outcome.started_at, outcome.finished_at) == (
        "2026-11-26T10:00:00Z",
        "2026-11-26T10:00:05Z",
    )


def test_a_pod_without_status_is_pending() -> None:
    pod = {"metadata": {"name": "p"}}
    assert pod_outcome(pod, "executor").phase is Phase.PENDING
    assert pending_reason(pod, "executor") == "not started yet"


def test_a_succeeded_pod_is_finished_even_if_disrupted_afterwards() -> None:
    pod = load("succeeded")
    pod["status"]["conditions"] = [{"type": "DisruptionTarget", "status": "True"}]
    assert pod_outcome(pod, "executor").phase is Phase.FINISHED


@pytest.mark.parametrize(
    ("fixture", "phase", "deleting", "ready"),
    [
        ("job-pending", JobPhase.ACTIVE, False, False),
        ("job-running", JobPhase.ACTIVE, False, True),
        ("job-complete", JobPhase.SUCCEEDED, False, False),
        ("job-failing", JobPhase.FAILED, False, False),
        ("job-failed", JobPhase.FAILED, False, False),
        ("job-deleting", JobPhase.ACTIVE, True, True),
    ],
)
def test_job_outcome(fixture: str, phase: JobPhase, deleting: bool, ready: bool) -> None:
    outcome = job_outcome(load(fixture))
    assert (outcome.phase, outcome.deleting, outcome.ready) == (phase, deleting, ready)


def test_a_failed_job_says_why() -> None:
    reason = job_outcome(load("job-failed")).reason
    assert reason == "BackoffLimitExceeded: Job has reached the specified backoff limit"


FAILED = JobOutcome(JobPhase.FAILED, False, "BackoffLimitExceeded")
SUCCEEDED = JobOutcome(JobPhase.SUCCEEDED, False)
ACTIVE = JobOutcome(JobPhase.ACTIVE, False)


@pytest.mark.parametrize(
    ("stored", "outcome", "expected"),
    [
        (State.CANCELING, None, State.CANCELED),
        (State.CANCELING, ACTIVE, None),
        (State.CANCELING, FAILED, None),
        (State.RUNNING, None, State.SYSTEM_ERROR),
        (State.RUNNING, FAILED, State.SYSTEM_ERROR),
        (State.INITIALIZING, SUCCEEDED, State.SYSTEM_ERROR),
        (State.QUEUED, FAILED, State.SYSTEM_ERROR),
        (State.RUNNING, ACTIVE, None),
        (State.COMPLETE, None, None),
        (State.EXECUTOR_ERROR, FAILED, None),
        (State.CANCELED, None, None),
    ],
)
def test_settle_state(stored: State, outcome: JobOutcome | None, expected: State | None) -> None:
    decision = settle_state(stored, outcome)
    assert (decision[0] if decision else None) == expected
    if decision is not None:
        assert decision[1]


def _pod(phase: str, state: dict[str, object], **status: object) -> dict[str, object]:
    return {
        "metadata": {"name": "p"},
        "status": {
            "phase": phase,
            "containerStatuses": [{"name": "executor", "state": state}],
            **status,
        },
    }


@pytest.mark.parametrize(
    "reason", ["InvalidImageName", "ErrImageNeverPull", "CreateContainerConfigError"]
)
def test_a_container_that_can_never_start_fails_at_once(reason: str) -> None:
    pod = _pod("Pending", {"waiting": {"reason": reason, "message": "no"}})
    outcome = pod_outcome(pod, "executor")
    assert outcome.phase is Phase.FAILED
    assert outcome.reason is not None
    assert reason in outcome.reason


@pytest.mark.parametrize("reason", ["ImagePullBackOff", "ErrImagePull", "ContainerCreating"])
def test_a_container_that_may_still_start_stays_pending(reason: str) -> None:
    outcome = pod_outcome(_pod("Pending", {"waiting": {"reason": reason}}), "executor")
    assert outcome.phase is Phase.PENDING


@pytest.mark.parametrize("reason", ["OutOfcpu", "OutOfmemory", "NodeAffinity"])
def test_a_pod_the_kubelet_refused_is_capacity_not_the_task(reason: str) -> None:
    outcome = pod_outcome(_pod("Failed", {}, reason=reason, message="m"), "executor")
    assert outcome.phase is Phase.PREEMPTED
    assert outcome.reason is not None
    assert reason in outcome.reason


def test_a_container_whose_state_was_lost_is_not_the_users_fault() -> None:
    state = {"terminated": {"reason": "ContainerStatusUnknown", "exitCode": 137}}
    outcome = pod_outcome(_pod("Failed", state), "executor")
    assert outcome.phase is Phase.PREEMPTED
