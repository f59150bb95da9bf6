"""The API side of the Kubernetes backend: brings the store in line with the cluster.

It watches (by label) the taskmaster Jobs and the status ConfigMaps of this TESK instance:

- a status ConfigMap's snapshot is applied with store.update (the reducer's compare-and-set makes
  repeated, late or concurrent applications harmless, so every API replica may run this);
- a finished Job gets its final snapshot applied; a task its taskmaster left unfinished ends
  SYSTEM_ERROR with the reason, and a failed taskmaster's Job is deleted so nothing it started
  keeps running;
- a deleted Job ends a CANCELING task as CANCELED (the Job goes last: everything it owned is gone)
  and any other unfinished task as SYSTEM_ERROR;
- a Job that has run past the pending timeout without its taskmaster ever reporting (it could not
  be scheduled, or its image not pulled) ends the task SYSTEM_ERROR and is deleted;
- a Job of a task the store has as CANCELING or CANCELED is deleted (a cancel that raced submit);
- an attempt that ended in a way the retry policy retries (its snapshot says it lost its
  capacity; with `retries.system_errors`, a failed taskmaster) is retried by the store's update
  in one transaction, then its Job (and everything it owns) is deleted and a Job for the next
  attempt created; a Job of an earlier attempt that is still there is deleted.

Each attempt has its own Job and status ConfigMap, labelled with the attempt: a report of an
attempt names it, and the store ignores reports of an attempt that is no longer the current one.

`resync` compares every unfinished stored task with the Jobs that exist: the same rules, plus
submitting again a QUEUED task whose Job was never created (the API died between store and
submit), and a task the dispatcher claimed whose Job was never created (the serving process died
between claim and create).

With `kubernetes.max_running_tasks` set, the loop also runs the dispatcher (dispatch.py): QUEUED
tasks wait for a free slot, and a QUEUED task without a Job is simply waiting its turn.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from kubernetes.client.exceptions import ApiException

from tesk.backends.kubernetes import names, snapshot
from tesk.backends.kubernetes.client import Kube, describe
from tesk.backends.kubernetes.dispatch import Dispatcher, claimed_without_report
from tesk.backends.kubernetes.informer import PAGE_SIZE, Informer
from tesk.backends.kubernetes.jobs import JobLauncher
from tesk.backends.kubernetes.status import (
    JobOutcome,
    JobPhase,
    creation_time,
    deletion_time,
    job_outcome,
    settle_state,
)
from tesk.config import KubernetesConfig
from tesk.store.base import TaskRecord, TaskStore
from tesk.tes.progress import AttemptFailure, Cause, Progress
from tesk.tes.retries import RetryPolicy, retried
from tesk.tes.states import UNFINISHED, State, is_terminal

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

# A taskmaster pod not running this long after its Job was made may have been refused: the
# Job's events are read (then every REFUSAL_CHECK_EVERY_S) until it runs or the timeout ends it.
REFUSAL_CHECK_AFTER_S = 5.0
REFUSAL_CHECK_EVERY_S = 10.0
RESUBMIT_AFTER_S = 120.0  # a QUEUED task without a Job is submitted again after this long
# How often the dispatcher looks for free slots when nothing woke it (a task queued by another
# replica, a task that ended while no event arrived): one counting query.
DISPATCH_POLL_S = 1.0


class Reconciler:
    def __init__(
        self,
        kube: Kube,
        config: KubernetesConfig,
        store: TaskStore,
        jobs: JobLauncher,
        *,
        dispatcher: Dispatcher | None = None,
        resubmit_after_s: float = RESUBMIT_AFTER_S,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        retries: RetryPolicy | None = None,
    ) -> None:
        self._kube = kube
        self._dispatcher = dispatcher
        self._retries = retries or RetryPolicy()
        self._config = config
        self._store = store
        self._job_launcher = jobs
        self._resubmit_after = resubmit_after_s
        self._clock = clock
        self._ns = config.namespace
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._jobs = Informer(
            kube,
            kube.batch.list_namespaced_job,
            self._ns,
            names.selector(config.instance, names.COMPONENT_TASKMASTER),
            self.on_job,
            name="job-watch",
        )
        self._statuses = Informer(
            kube,
            kube.core.list_namespaced_config_map,
            self._ns,
            names.selector(config.instance, names.COMPONENT_STATUS),
            self.on_status,
            name="status-watch",
        )
        self._loop: threading.Thread | None = None
        self._released: set[str] = set()  # names of Jobs deleted again in the background
        self._refusal_checked: dict[str, float] = {}  # Job name -> when its events were read
        # Claimed tasks seen without a Job -> since when (monotonic): another replica's claim
        # creates its Job a moment after the claim, so only one missing this long was lost.
        self._claims_without_job: dict[str, float] = {}

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        self._statuses.start()
        self._jobs.start()
        self._loop = threading.Thread(target=self._run, name="tesk-reconciler", daemon=True)
        self._loop.start()

    def wake(self) -> None:
        """A hint: a task was queued or ended, the dispatcher may have a slot to fill now."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        self._jobs.stop()
        self._statuses.stop()
        if self._loop is not None:
            self._loop.join(5)

    def _run(self) -> None:
        # Snapshots first: a task that finished while no API ran is settled from its snapshot.
        self._statuses.wait_synced(30)
        self._jobs.wait_synced(30)
        tick = min(5.0, max(0.5, self._config.pending_timeout_s / 4))
        wait = tick if self._dispatcher is None else min(tick, DISPATCH_POLL_S)
        next_resync = next_check = 0.0
        while not self._stopping.is_set():
            try:
                now = time.monotonic()
                if now >= next_resync:
                    next_resync = now + self._config.resync_interval_s
                    self.resync()
                if now >= next_check:
                    next_check = now + tick
                    jobs = self._jobs.objects()
                    self.check_pending(jobs)
                    self.check_stuck_deletions(jobs)
                if self._dispatcher is not None:
                    self._dispatcher.dispatch()
            except Exception:
                logger.exception("reconciler: a pass failed; trying again")
            self._wake.wait(wait)
            self._wake.clear()

    # -- events -------------------------------------------------------------------------------

    def on_status(self, kind: str, configmap: Obj) -> None:
        if kind == "DELETED":
            return
        task_id = _task_id(configmap)
        text = (configmap.get("data") or {}).get(names.PROGRESS_KEY)
        if task_id is None or text is None:
            return
        self._apply_snapshot(task_id, _attempt(configmap), text)

    def on_job(self, kind: str, job: Obj) -> None:
        task_id = _task_id(job)
        if task_id is None:
            return
        attempt = _attempt(job)
        if kind == "DELETED":
            self.settle(task_id, None, attempt)
            return
        outcome = job_outcome(job)
        record = self._store.get(task_id)
        if record is None:
            return
        if outcome.deleting:
            pass
        elif record.state in (State.CANCELING, State.CANCELED):
            # The cancel did not reach the Job (it raced submit, or the API server failed).
            self.delete_job(task_id, attempt)
            return
        elif attempt < record.attempt:
            # An earlier attempt's Job that was not deleted when the task was retried: the store
            # ignores whatever it still reports, and nothing of it is wanted any more.
            self.delete_job(task_id, attempt)
            return
        if outcome.phase is not JobPhase.ACTIVE:
            self.settle(task_id, outcome, attempt)

    def settle(self, task_id: str, outcome: JobOutcome | None, attempt: int = 1) -> None:
        """The taskmaster of `attempt` can report no more: apply its last snapshot, then end
        what it left (unless the task has gone on to a later attempt)."""
        record = self._store.get(task_id)
        if record is None or is_terminal(record.state) or record.attempt != attempt:
            return
        if record.state != State.CANCELING:
            self._apply_stored_snapshot(task_id, attempt)
            record = self._store.get(task_id)
            if record is None or record.attempt != attempt:
                return
        decision = settle_state(record.state, outcome)
        if decision is None:
            return
        state, reason = decision
        logger.info("task %s: %s (%s)", task_id, state, reason)
        system_logs = () if state == State.CANCELED else (reason,)
        failed = outcome is not None and outcome.phase is JobPhase.FAILED
        progress = Progress(
            state,
            system_logs=system_logs,
            attempt=attempt,
            # The taskmaster pod itself failed: the infrastructure, not the task.
            failure=AttemptFailure(Cause.SYSTEM_ERROR, reason) if failed else None,
        )
        updated = self._apply(task_id, progress, expected={record.state})
        if updated is not None:
            self._slot_freed()
        # What a dead taskmaster started may still run: delete it all (the Job of an attempt
        # that was retried is deleted by _apply already).
        if (
            updated is not None
            and failed
            and outcome is not None
            and not outcome.deleting
            and not retried(progress, updated.state)
        ):
            self.delete_job(task_id, attempt)

    def check_pending(self, jobs: list[Obj]) -> None:
        """End tasks whose taskmaster pod has not started within the pending timeout.

        A Job with a ready pod has a running taskmaster (clusters older than 1.24 do not count
        ready pods: there the timeout counts until the taskmaster's first report).
        """
        now = self._clock()
        for job in jobs:
            task_id = _task_id(job)
            created = creation_time(job)
            if task_id is None or created is None:
                continue
            outcome = job_outcome(job)
            if outcome.phase is not JobPhase.ACTIVE or outcome.deleting or outcome.ready:
                continue
            attempt = _attempt(job)
            job_name = names.TaskNames(task_id, attempt).job
            waited = (now - created).total_seconds()
            if waited >= REFUSAL_CHECK_AFTER_S and self._refused(task_id, attempt):
                continue
            if waited < self._config.pending_timeout_s:
                continue
            reason = (
                f"the taskmaster did not start within {self._config.pending_timeout_s} s "
                "(kubernetes.pending_timeout_s): its pod could not be scheduled or its image "
                f"not pulled; see `kubectl describe pod -l job-name={job_name}`"
            )
            self._end_unstarted(task_id, attempt, reason)

    def _refused(self, task_id: str, attempt: int) -> bool:
        """End a task at once whose taskmaster pod the API server refused (Pod Security, a
        quota, a LimitRange): the Job controller says so in a FailedCreate event, and waiting
        for the pending timeout would only hide the API server's message. True: it was ended."""
        job = names.TaskNames(task_id, attempt).job
        last = self._refusal_checked.get(job, 0.0)
        if time.monotonic() - last < REFUSAL_CHECK_EVERY_S:
            return False
        self._refusal_checked[job] = time.monotonic()
        try:
            found = self._kube.list(
                "events",
                self._ns,
                field_selector=f"involvedObject.kind=Job,involvedObject.name={job},reason=FailedCreate",
            )
        except Exception as exc:  # the pending timeout still ends a task that never starts
            logger.warning("task %s: reading its Job's events failed: %s", task_id, exc)
            return False
        messages = [str(e.get("message") or "") for e in found.get("items") or []]
        if not messages:
            return False
        reason = f"the taskmaster pod was refused by the API server: {messages[-1]}"
        self._end_unstarted(task_id, attempt, reason)
        self._refusal_checked.pop(job, None)
        return True

    def _end_unstarted(self, task_id: str, attempt: int, reason: str) -> None:
        """End a task whose taskmaster (of `attempt`) never reported (QUEUED, or claimed by the
        dispatcher) and delete that Job. A task its taskmaster has reported on is left to it."""
        record = self._store.get(task_id)
        if record is None or record.attempt != attempt:
            return
        if not (record.state == State.QUEUED or claimed_without_report(record)):
            return
        # The compare-and-set on QUEUED or INITIALIZING: a claimed task's first report, seconds
        # after the pending timeout, may still come between the read and this write.
        progress = Progress(State.SYSTEM_ERROR, system_logs=(reason,), attempt=attempt)
        if self._store.update(task_id, progress, expected={record.state}):
            logger.warning("task %s: %s", task_id, reason)
            self._slot_freed()
            self.delete_job(task_id, attempt)

    def check_stuck_deletions(self, jobs: list[Obj]) -> None:
        """Let go of Jobs whose foreground deletion waits on pods that cannot end.

        Pods on a node that stopped answering stay Terminating until it comes back or is
        removed; a foreground deletion waits for them, and a cancelled task would stay
        CANCELING. Past kubernetes.cancel_timeout_s the Job is deleted again in the background:
        it goes now, and the garbage collector removes those pods once their node lets it.
        """
        now = self._clock()
        for job in jobs:
            task_id = _task_id(job)
            since = deletion_time(job)
            attempt = _attempt(job)
            name = names.TaskNames(task_id or "", attempt).job
            if task_id is None or since is None or name in self._released:
                continue
            if (now - since).total_seconds() < self._config.cancel_timeout_s:
                continue
            self._released.add(name)
            logger.warning(
                "task %s: its Job has waited %d s for its pods to end; deleting it in the "
                "background (pods on an unreachable node go when the node returns or is removed)",
                task_id,
                (now - since).total_seconds(),
            )
            self.delete_job(task_id, attempt, propagation="Background")

    # -- full comparison ----------------------------------------------------------------------

    def resync(self) -> None:
        # The store first: a task past QUEUED then had its Job before the listing began, so a
        # Job created while the listing runs is never taken for one that disappeared.
        records = self._store.find(UNFINISHED)
        jobs: dict[str, list[Obj]] = {}
        for job in self._list_jobs():
            if task_id := _task_id(job):
                jobs.setdefault(task_id, []).append(job)
        now = self._clock()
        lost_claims: dict[str, float] = {}
        for record in records:
            found = jobs.get(record.id, [])
            for job in found:
                self.on_job("MODIFIED", job)
            if any(_attempt(job) == record.attempt for job in found):
                continue
            if record.state == State.QUEUED:
                if self._dispatcher is not None:
                    continue  # waiting in TESK's queue for a free slot
                # A retried task is as old as its first attempt: its next Job, if the API that
                # retried it died before creating it, is created at the first resync.
                age = now.timestamp() - record.created_us / 1_000_000
                if age >= self._resubmit_after:
                    logger.warning("task %s: QUEUED without a Job; submitting it again", record.id)
                    self._submit_again(record)
                continue
            if claimed_without_report(record):
                since = self._claims_without_job.get(record.id, time.monotonic())
                if time.monotonic() - since < self._resubmit_after:
                    lost_claims[record.id] = since
                    continue
                logger.warning("task %s: claimed without a Job; submitting it again", record.id)
                self._submit_again(record)
                continue
            self.settle(record.id, None, record.attempt)
        self._claims_without_job = lost_claims

    def _submit_again(self, record: TaskRecord) -> None:
        try:
            self._job_launcher.submit(record)
        except Exception as exc:
            updated = self._store.update(
                record.id,
                Progress(
                    State.SYSTEM_ERROR,
                    system_logs=(f"the task could not be submitted again: {exc}",),
                    attempt=record.attempt,
                ),
                expected={record.state},
            )
            if updated is not None:
                self._slot_freed()

    def _list_jobs(self) -> list[Obj]:
        found: list[Obj] = []
        token: str | None = None
        selector = names.selector(self._config.instance, names.COMPONENT_TASKMASTER)
        while True:
            kwargs: dict[str, Any] = {"label_selector": selector, "limit": PAGE_SIZE}
            if token:
                kwargs["_continue"] = token
            page = self._kube.list("jobs", self._ns, **kwargs)
            found += page.get("items") or []
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return found

    # -- cluster calls ------------------------------------------------------------------------

    def delete_job(self, task_id: str, attempt: int = 1, propagation: str = "Foreground") -> bool:
        return self._job_launcher.delete(task_id, attempt, propagation)

    def _stored_snapshot(self, task_id: str, attempt: int) -> str | None:
        """The snapshot in the status ConfigMap of the task's `attempt`, if there is one."""
        try:
            configmap = self._kube.read(
                "configmaps", self._ns, names.TaskNames(task_id, attempt).status_configmap
            )
        except ApiException as exc:
            logger.warning("task %s: reading its status failed: %s", task_id, describe(exc))
            raise
        if configmap is None:
            return None
        text = (configmap.get("data") or {}).get(names.PROGRESS_KEY)
        return str(text) if text is not None else None

    def _apply_stored_snapshot(self, task_id: str, attempt: int) -> None:
        text = self._stored_snapshot(task_id, attempt)
        if text is not None:
            self._apply_snapshot(task_id, attempt, text)

    def _apply_snapshot(self, task_id: str, attempt: int, text: str) -> None:
        try:
            progress = snapshot.decode(text)
        except snapshot.SnapshotError as exc:
            logger.warning("task %s: ignoring its status ConfigMap: %s", task_id, exc)
            return
        if progress.state == State.CANCELED:
            # A cancelled task is CANCELED once its Job is gone, not when its taskmaster stops.
            return
        if progress.attempt is None:  # a taskmaster that knew no attempts: the label says
            progress = replace(progress, attempt=attempt)
        self._apply(task_id, progress)

    def _apply(
        self, task_id: str, progress: Progress, *, expected: set[State] | None = None
    ) -> TaskRecord | None:
        """Apply `progress` under the retry policy; start the next attempt of a retried one."""
        updated = self._store.update(task_id, progress, expected=expected, retries=self._retries)
        if updated is None:
            return None
        if retried(progress, updated.state):
            self._next_attempt(updated, progress.attempt or updated.attempt - 1)
        elif is_terminal(updated.state):
            self._slot_freed()
        return updated

    def _slot_freed(self) -> None:
        if self._dispatcher is not None:
            self._wake.set()

    def _next_attempt(self, record: TaskRecord, ended: int) -> None:
        """The task was retried: delete the ended attempt's Job, with everything it owns (its
        pods, its volume, its status), then create the Job of the next attempt."""
        logger.info("task %s: attempt %d retried as attempt %d", record.id, ended, record.attempt)
        try:
            self.delete_job(record.id, ended)
        except Exception as exc:  # the next resync deletes a Job of an earlier attempt
            logger.warning(
                "task %s: deleting the Job of attempt %d failed: %s", record.id, ended, exc
            )
        if self._dispatcher is not None:
            self._slot_freed()  # the next attempt waits in TESK's queue like any QUEUED task
            return
        try:
            self._job_launcher.submit(record)
        except Exception as exc:  # the next resync submits a QUEUED task without a Job
            logger.warning(
                "task %s: the Job of attempt %d could not be created yet: %s",
                record.id,
                record.attempt,
                exc,
            )


def _task_id(obj: Obj) -> str | None:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    value = labels.get(names.LABEL_TASK)
    return str(value) if value else None


def _attempt(obj: Obj) -> int:
    return names.attempt_of((obj.get("metadata") or {}).get("labels") or {})
