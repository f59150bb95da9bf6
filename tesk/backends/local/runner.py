"""The local runner: claims QUEUED tasks from the store and runs each with the engine in a thread.

One runner serves a data dir (the backend holds its lock). Everything it needs to know is in the
store: a claim is a compare-and-set QUEUED -> INITIALIZING that records the runner's id, so
several runners could share a store safely, and a restarted runner finds the tasks it held.
Hints (wake-ups) only make it look at the store sooner than its next poll.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from tesk.backends.local.reporting import ProgressWriter
from tesk.engine.cancellation import Cancellation
from tesk.engine.engine import TaskEngine
from tesk.engine.runtime import Runtime
from tesk.engine.usage import Prices
from tesk.store.base import TaskRecord, TaskStore
from tesk.tes.models import Task
from tesk.tes.progress import AttemptFailure, Cause, Progress
from tesk.tes.retries import RetryPolicy
from tesk.tes.states import STARTED, State

logger = logging.getLogger(__name__)

STOPPED_REASON = "TESK stopped while the task was running"
LOST_REASON = "the runner lost track of the task (its final state could not be stored)"

_ENGINE_EXIT_WAIT_S = 30.0


@dataclass
class _Running:
    record: TaskRecord
    cancel: Cancellation
    thread: threading.Thread


class Runner:
    """Claims and runs tasks; what makes it look at the store is a hint, a free slot or its poll.

    Hints come from `task_queued` (a task was created) and `task_canceling` (a task was stored
    CANCELING). A burst of hints is one look at the store, and a hint that a task was queued
    costs no store call at all while every slot is busy: the runner knows how many tasks it
    runs, and it claims only for free slots, as many as are free in one store call. Whether
    more tasks may wait is remembered from the hints and from the last claim (a claim that
    filled every free slot may have left more), so a slot that frees claims at once. The poll
    (`poll_interval_s`) claims and sweeps cancels anyway, for the hints that never arrived.
    """

    def __init__(
        self,
        store: TaskStore,
        make_runtime: Callable[[Task], Runtime],
        *,
        runner_id: str,
        max_concurrent: int,
        poll_interval_s: float = 1.0,
        orphan_check_s: float = 10.0,
        prices: Prices | None = None,
        retries: RetryPolicy | None = None,
    ) -> None:
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent must be at least 1, not {max_concurrent}")
        self._store = store
        self._make_runtime = make_runtime
        self.runner_id = runner_id
        self._max = max_concurrent
        self._poll = poll_interval_s
        self._orphan_check = orphan_check_s
        self._prices = prices
        self._retries = retries or RetryPolicy()
        self._lock = threading.Lock()
        self._running: dict[str, _Running] = {}
        self._progress = ProgressWriter(store, self._retries, self.task_queued)
        # Set under _lock by whoever has news; read and reset by the loop thread.
        self._queued_hint = False
        self._cancel_hints: set[str] = set()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._loop_thread = threading.Thread(target=self._loop, name="tesk-runner", daemon=True)
        self._may_have_queued = True  # the loop thread's own: nothing is known at start
        self._next_poll = 0.0
        self._next_orphan_check = 0.0

    def start(self) -> None:
        self.recover()
        self._progress.start()
        self._loop_thread.start()

    def task_queued(self, task_id: str | None = None) -> None:
        """A hint: a task may be QUEUED. Wakes the loop only if a slot is free to run it."""
        with self._lock:
            self._queued_hint = True
            free = len(self._running) < self._max
        if free:
            self._wake.set()

    def task_canceling(self, task_id: str) -> None:
        """A hint: `task_id` may be CANCELING (the store says whether it is)."""
        with self._lock:
            self._cancel_hints.add(task_id)
        self._wake.set()

    def running(self) -> list[str]:
        with self._lock:
            return list(self._running)

    def recover(self) -> None:
        """Settle the tasks a dead process of this runner held; QUEUED ones are simply claimed.

        An attempt its runner took down with it lost its capacity: it is retried while the
        task has attempts left, else the task ends PREEMPTED.
        """
        for record in self._store.find(STARTED, worker=self.runner_id):
            logger.warning("task %s was left %s by a stopped runner", record.id, record.state)
            self._lose(record)
        for record in self._store.find({State.CANCELING}, worker=self.runner_id):
            self._store.update(record.id, Progress(State.CANCELED), expected={State.CANCELING})

    def _lose(self, record: TaskRecord) -> None:
        """End the attempt of `record` that this runner cannot go on with: its capacity is lost."""
        self._store.update(
            record.id,
            Progress(
                State.PREEMPTED,
                system_logs=(STOPPED_REASON,),
                attempt=record.attempt,
                failure=AttemptFailure(Cause.CAPACITY_LOST, STOPPED_REASON),
            ),
            expected=STARTED,
            retries=self._retries,
        )

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self._tick()
            except Exception:
                logger.exception("runner: looking at the store failed; trying again")
                self._may_have_queued = True
            self._wake.wait(max(0.0, self._next_poll - time.monotonic()))
            self._wake.clear()

    def _tick(self) -> None:
        with self._lock:
            hinted, self._queued_hint = self._queued_hint, False
            cancels, self._cancel_hints = self._cancel_hints, set()
        now = time.monotonic()
        polling = now >= self._next_poll
        if polling:
            self._next_poll = now + self._poll
            self._sweep_canceling()
            if now >= self._next_orphan_check:
                self._next_orphan_check = now + self._orphan_check
                self._fail_orphans()
        else:
            for task_id in cancels:
                self._settle_cancel(task_id)
        if hinted or polling:
            self._may_have_queued = True
        if self._may_have_queued:
            self._claim()

    def _sweep_canceling(self) -> None:
        for record in self._store.find({State.CANCELING}, worker=self.runner_id):
            self._cancel_held(record.id)

    def _settle_cancel(self, task_id: str) -> None:
        record = self._store.get(task_id)
        if record is None or record.worker != self.runner_id:
            return  # another runner's task, or a forged hint
        if record.state == State.CANCELING:
            self._cancel_held(task_id)

    def _cancel_held(self, task_id: str) -> None:
        """A task of this runner is CANCELING: stop its engine, or end it if none runs."""
        with self._lock:
            entry = self._running.get(task_id)
        if entry is not None:
            entry.cancel.cancel()
        else:
            self._store.update(task_id, Progress(State.CANCELED), expected={State.CANCELING})

    def _fail_orphans(self) -> None:
        """Tasks held here that no engine runs (their final report was lost)."""
        for record in self._store.find(STARTED, worker=self.runner_id):
            with self._lock:
                if record.id in self._running:
                    continue
            self._store.update(
                record.id,
                Progress(State.SYSTEM_ERROR, system_logs=(LOST_REASON,), attempt=record.attempt),
                expected=STARTED,
            )

    def _claim(self) -> None:
        with self._lock:
            free = self._max - len(self._running)
        if free <= 0 or self._stopping.is_set():
            return  # a slot that frees wakes the loop, which claims then
        claimed = self._store.claim(self.runner_id, free)
        # Fewer than asked for: nothing else was QUEUED then; a new task sends a hint.
        self._may_have_queued = len(claimed) == free
        for record in claimed:
            self._start_engine(record)

    def _start_engine(self, record: TaskRecord) -> None:
        cancel = Cancellation()
        thread = threading.Thread(
            target=self._execute, args=(record, cancel), name=f"tesk-task-{record.id}"
        )
        with self._lock:
            self._running[record.id] = _Running(record, cancel, thread)
        thread.start()

    def _execute(self, record: TaskRecord, cancel: Cancellation) -> None:
        try:
            runtime = self._make_runtime(record.task)
            engine = TaskEngine(
                record.task,
                runtime,
                self._progress.reporter(record.id, cancel),
                cancel,
                initial_log=record.log,
                first_seq=record.seq + 1,
                attempt=record.attempt,
                prices=self._prices,
            )
            engine.run()
        except Exception as exc:
            logger.exception("task %s could not be run", record.id)
            reason = f"the task could not be started: {exc}"
            try:
                self._store.update(
                    record.id,
                    Progress(
                        State.SYSTEM_ERROR,
                        system_logs=(reason,),
                        attempt=record.attempt,
                        failure=AttemptFailure(Cause.SYSTEM_ERROR, reason),
                    ),
                    expected=STARTED,
                    retries=self._retries,
                )
                self.task_queued()
            except Exception:
                logger.exception("task %s: storing its failure failed", record.id)
        finally:
            with self._lock:
                self._running.pop(record.id, None)
            self._wake.set()

    def stop(self, grace_s: float) -> None:
        """Take no more tasks; give running ones `grace_s` to finish, then stop them.

        A stopped attempt lost its capacity: it is queued again as a new attempt (run when TESK
        starts again) while the task has attempts left, else the task ends PREEMPTED with the
        reason; a task that was being cancelled ends CANCELED.
        """
        self._stopping.set()
        self._wake.set()
        if self._loop_thread.is_alive():
            self._loop_thread.join()
        deadline = time.monotonic() + grace_s
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.05)
        with self._lock:
            remaining = list(self._running.values())
        for entry in remaining:
            try:
                self._lose(entry.record)
            except Exception:
                logger.exception("task %s: storing its stop failed", entry.record.id)
            entry.cancel.cancel()
        for entry in remaining:
            entry.thread.join(_ENGINE_EXIT_WAIT_S)
        self._progress.stop()
