"""Pure functions from pod and Job status (API JSON, camelCase) to what TESK makes of them.

The taskmaster asks `pod_outcome` about each filer and executor pod it runs; the API's reconciler
asks `job_outcome` about each taskmaster Job. Nothing here talks to the cluster, so every mapping
is tested with recorded objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from tesk.tes.states import ACTIVE, State

Obj = dict[str, Any]


class Phase(Enum):
    PENDING = "pending"  # not started: being scheduled, pulling, mounting
    RUNNING = "running"
    FINISHED = "finished"  # the container terminated: see exit_code/reason
    PREEMPTED = "preempted"  # capacity reclaimed: evicted, node lost, preempted
    FAILED = "failed"  # the pod failed without its container ever running to an end


# Waiting reasons that no wait can cure: the pod fails at once instead of at the pending timeout.
PERMANENT_WAITING = frozenset(
    {"InvalidImageName", "ErrImageNeverPull", "CreateContainerConfigError"}
)
# Pod-level failure reasons of the kubelet's admission: the pod never ran because the node could
# not take it (its resources were taken meanwhile, affinity changed): capacity, not the task.
ADMISSION_REFUSALS = frozenset(
    {
        "OutOfcpu",
        "OutOfmemory",
        "OutOfpods",
        "OutOfephemeral-storage",
        "UnexpectedAdmissionError",
        "NodeAffinity",
        "NodeSelectorMismatching",
        "NodeShutdown",
        "Terminated",
    }
)


@dataclass(frozen=True)
class PodOutcome:
    phase: Phase
    exit_code: int | None = None
    reason: str | None = None  # why, in words for system_logs
    started_at: str | None = None
    finished_at: str | None = None
    container_reason: str | None = None  # the container's terminated/waiting reason as reported


def pod_outcome(pod: Obj, container: str) -> PodOutcome:
    """What became of the pod's `container` (the only container TESK pods have)."""
    status = pod.get("status") or {}
    phase = status.get("phase") or "Pending"
    state = _container_state(status, container)
    terminated = state.get("terminated")
    if phase == "Succeeded" and terminated:
        return _finished(terminated, None)
    disruption = _condition(status, "DisruptionTarget")
    if status.get("reason") == "Evicted" or (disruption and disruption.get("status") == "True"):
        reason = status.get("message") or (disruption or {}).get("message") or "evicted"
        why = (disruption or {}).get("reason") or status.get("reason") or "DisruptionTarget"
        return PodOutcome(Phase.PREEMPTED, reason=f"{why}: {reason}")
    if status.get("reason") == "DeadlineExceeded":
        message = status.get("message") or "the pod ran longer than its activeDeadlineSeconds"
        return PodOutcome(
            Phase.FINISHED,
            exit_code=int(terminated["exitCode"]) if terminated else 137,
            reason=f"DeadlineExceeded: {message}",
            started_at=(terminated or {}).get("startedAt"),
            finished_at=(terminated or {}).get("finishedAt"),
            container_reason="DeadlineExceeded",
        )
    if phase == "Failed" and (
        status.get("reason") in ADMISSION_REFUSALS
        or str(status.get("reason", "")).startswith("OutOf")
    ):
        message = status.get("message") or "the node refused the pod"
        return PodOutcome(
            Phase.PREEMPTED, reason=f"refused by the node ({status['reason']}): {message}"
        )
    if terminated:
        why = terminated.get("reason")
        if why == "ContainerStatusUnknown":
            # The kubelet lost track of the container (its node restarted or lost its state):
            # whatever the exit code says, it is not the command's doing.
            message = terminated.get("message") or "the container's state was lost"
            return PodOutcome(
                Phase.PREEMPTED, reason=f"ContainerStatusUnknown: {message}", container_reason=why
            )
        if why in ("StartError", "ContainerCannotRun"):
            message = terminated.get("message") or why
            return PodOutcome(
                Phase.FAILED,
                reason=f"the container could not start: {message}",
                container_reason=why,
            )
        return _finished(terminated, why)
    if phase == "Failed":
        message = status.get("message") or status.get("reason") or "the pod failed"
        return PodOutcome(Phase.FAILED, reason=message)
    if state.get("running"):
        return PodOutcome(Phase.RUNNING, started_at=state["running"].get("startedAt"))
    waiting = state.get("waiting") or {}
    if waiting.get("reason") in PERMANENT_WAITING:
        return PodOutcome(
            Phase.FAILED,
            reason=f"the container cannot start: {pending_reason(pod, container)}",
            container_reason=waiting["reason"],
        )
    return PodOutcome(Phase.PENDING, reason=pending_reason(pod, container))


def _finished(terminated: Obj, why: str | None) -> PodOutcome:
    reason = None
    if why == "OOMKilled":
        reason = "OOMKilled: the container used more memory than its limit (resources.ram_gb)"
    return PodOutcome(
        Phase.FINISHED,
        exit_code=int(terminated.get("exitCode", 0)),
        reason=reason,
        started_at=terminated.get("startedAt"),
        finished_at=terminated.get("finishedAt"),
        container_reason=why,
    )


def pending_reason(pod: Obj, container: str) -> str:
    """Why a pod has not started yet, as the scheduler or kubelet says it."""
    status = pod.get("status") or {}
    waiting = _container_state(status, container).get("waiting") or {}
    if waiting.get("reason") and waiting.get("reason") != "ContainerCreating":
        message = waiting.get("message")
        return f"{waiting['reason']}: {message}" if message else str(waiting["reason"])
    scheduled = _condition(status, "PodScheduled")
    if scheduled and scheduled.get("status") == "False":
        reason = scheduled.get("reason") or "Unschedulable"
        message = scheduled.get("message")
        return f"{reason}: {message}" if message else str(reason)
    if waiting.get("reason"):
        return str(waiting["reason"])
    return "not started yet"


def _container_state(status: Obj, container: str) -> Obj:
    for entry in status.get("containerStatuses") or []:
        if entry.get("name") == container:
            return entry.get("state") or {}
    return {}


def _condition(status: Obj, kind: str) -> Obj | None:
    for condition in status.get("conditions") or []:
        if condition.get("type") == kind:
            return dict(condition)
    return None


# -- taskmaster Jobs (the API's reconciler) -----------------------------------------------------


class JobPhase(Enum):
    ACTIVE = "active"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class JobOutcome:
    phase: JobPhase
    deleting: bool
    reason: str | None = None
    ready: bool = False  # its pod runs (status.ready, Kubernetes 1.24+)


def job_outcome(job: Obj) -> JobOutcome:
    """Whether a taskmaster Job is still running, and how it ended (conditions, never positions)."""
    status = job.get("status") or {}
    deleting = bool((job.get("metadata") or {}).get("deletionTimestamp"))
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    for kind in ("Failed", "FailureTarget"):
        condition = conditions.get(kind)
        if condition and condition.get("status") == "True":
            reason = condition.get("reason") or "Failed"
            message = condition.get("message")
            return JobOutcome(
                JobPhase.FAILED, deleting, f"{reason}: {message}" if message else reason
            )
    for kind in ("Complete", "SuccessCriteriaMet"):
        condition = conditions.get(kind)
        if condition and condition.get("status") == "True":
            return JobOutcome(JobPhase.SUCCEEDED, deleting)
    return JobOutcome(JobPhase.ACTIVE, deleting, ready=bool(status.get("ready")))


def settle_state(stored: State, outcome: JobOutcome | None) -> tuple[State, str] | None:
    """The state a task must take once its taskmaster can no longer report, or None.

    Called after the taskmaster's last snapshot was applied. `outcome` is None when the Job is
    gone. A task being cancelled ends CANCELED once its Job is gone; any other task that is not
    finished when its taskmaster stopped ends SYSTEM_ERROR with the reason.
    """
    if stored == State.CANCELING:
        if outcome is None:
            return State.CANCELED, "the task's Job and everything it owned are deleted"
        return None
    if stored not in ACTIVE:
        return None
    if outcome is None:
        return State.SYSTEM_ERROR, "the taskmaster Job disappeared before the task finished"
    if outcome.phase is JobPhase.FAILED:
        return (
            State.SYSTEM_ERROR,
            f"the taskmaster failed without a final report ({outcome.reason})",
        )
    if outcome.phase is JobPhase.SUCCEEDED:
        return State.SYSTEM_ERROR, "the taskmaster ended without a final report"
    return None


def creation_time(obj: Obj) -> datetime | None:
    return _time(obj, "creationTimestamp")


def deletion_time(obj: Obj) -> datetime | None:
    return _time(obj, "deletionTimestamp")


def _time(obj: Obj, field: str) -> datetime | None:
    value = (obj.get("metadata") or {}).get(field)
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
