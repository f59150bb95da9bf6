"""TESK's own queue on Kubernetes: taskmaster Jobs for QUEUED tasks while a slot is free.

With `kubernetes.max_running_tasks` set, submit only stores a task QUEUED; the serving process
creates the Jobs here, at most as many as the limit leaves free. The tasks come from the store's
`claim`, which takes them fairly across owners (one owner's burst does not starve another owner's
single task) and is a compare-and-set: several API replicas never create the same task's Job
twice, and a task cancelled while it waits is simply not claimed.

A claimed task is INITIALIZING before its taskmaster reports (its seq is still 0); a claim whose
Job could not be created ends SYSTEM_ERROR with the reason, as a failed submit does. A claim
whose process died before the Job was created is found by the reconciler's resync, which submits
it again.
"""

from __future__ import annotations

import logging

from tesk.backends.kubernetes.jobs import JobLauncher
from tesk.store.base import TaskRecord, TaskStore
from tesk.tes.progress import Progress
from tesk.tes.states import STARTED, State

logger = logging.getLogger(__name__)


def claimed_without_report(record: TaskRecord) -> bool:
    """A task the dispatcher claimed whose taskmaster has not reported yet (maybe never ran)."""
    return record.state == State.INITIALIZING and record.seq == 0


class Dispatcher:
    def __init__(self, store: TaskStore, jobs: JobLauncher, *, limit: int, worker: str) -> None:
        if limit < 1:
            raise ValueError(f"the limit must be at least 1, not {limit}")
        self._store = store
        self._jobs = jobs
        self._limit = limit
        self.worker = worker

    def dispatch(self) -> list[str]:
        """Claim what the limit leaves free and create those Jobs; the ids of the tasks started."""
        counts = self._store.count_by_state({State.QUEUED, *STARTED})
        free = self._limit - sum(counts[state] for state in STARTED)
        if free <= 0 or counts[State.QUEUED] == 0:
            return []
        started: list[str] = []
        for record in self._store.claim(self.worker, free):
            if self.launch(record):
                started.append(record.id)
        return started

    def launch(self, record: TaskRecord) -> bool:
        """Create the Job of a claimed task; a failure ends the task with the reason."""
        try:
            self._jobs.submit(record)
        except Exception as exc:  # a BackendError, or whatever else the call raised
            reason = f"the backend did not accept the task: {exc}"
            logger.warning("task %s: %s", record.id, reason)
            self._store.update(
                record.id,
                Progress(State.SYSTEM_ERROR, system_logs=(reason,), attempt=record.attempt),
                expected={State.INITIALIZING},
            )
            return False
        logger.info("task %s: its taskmaster Job is created (owner %s)", record.id, record.owner)
        return True
