"""The engine's progress reports of the local runner's tasks, on their way to the store.

Every report is a cumulative snapshot with a higher sequence number, so a snapshot that a newer
one of the same task replaced before it was stored need not be stored at all. Reports before the
final one are therefore handed to one writer thread and the engine goes on at once; the writer
stores, per task, the latest snapshot it finds. When the store keeps up, each snapshot is stored
a moment after it was made; when writes queue up (many short tasks, one SQLite writer at a
time), the snapshots a task's final report makes obsolete are dropped instead of each costing a
write. The final report is stored by the engine's own thread before the task's slot frees, and a
failure reaches the engine, which retries it.

A report the store refuses may mean the task was stored CANCELING meanwhile: then the task's
cancellation is triggered, whichever thread stored the report. Reports go through the retry
policy: a final report that the store turned into a new attempt tells the runner, which claims
the task again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from tesk.engine.cancellation import Cancellation
from tesk.store.base import TaskStore
from tesk.tes.progress import Progress
from tesk.tes.retries import RetryPolicy, retried
from tesk.tes.states import State, is_terminal

logger = logging.getLogger(__name__)


class ProgressWriter:
    def __init__(
        self,
        store: TaskStore,
        retries: RetryPolicy | None = None,
        on_requeued: Callable[[str], None] = lambda task_id: None,
    ) -> None:
        self._store = store
        self._retries = retries
        self._on_requeued = on_requeued
        self._pending: dict[str, tuple[Progress, Cancellation]] = {}
        self._changed = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="tesk-progress", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def reporter(self, task_id: str, cancel: Cancellation) -> TaskReporter:
        """The ProgressReporter of one task's engine."""
        return TaskReporter(self, task_id, cancel)

    def report(self, task_id: str, progress: Progress, cancel: Cancellation) -> None:
        if is_terminal(progress.state):
            with self._changed:
                self._pending.pop(task_id, None)  # the final snapshot holds all it did
            self._store_report(task_id, progress, cancel)
            return
        with self._changed:
            if not self._stopping:
                self._pending[task_id] = (progress, cancel)
                self._changed.notify()
                return
        self._store_report(task_id, progress, cancel)  # no writer any more: store it here

    def stop(self) -> None:
        """Store what is pending, then end the writer; later reports are stored by the caller."""
        with self._changed:
            self._stopping = True
            self._changed.notify()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._pending and not self._stopping:
                    self._changed.wait()
                batch, self._pending = self._pending, {}
                if not batch and self._stopping:
                    return
            for task_id, (progress, cancel) in batch.items():
                try:
                    self._store_report(task_id, progress, cancel)
                except Exception:
                    # The task's next snapshot (at the latest its final one) carries this one.
                    logger.warning(
                        "task %s: progress report %s (%s) failed",
                        task_id,
                        progress.seq,
                        progress.state,
                        exc_info=True,
                    )

    def _store_report(self, task_id: str, progress: Progress, cancel: Cancellation) -> None:
        updated = self._store.update(task_id, progress, retries=self._retries)
        if updated is not None:
            if retried(progress, updated.state):
                self._on_requeued(task_id)
            return
        if not is_terminal(progress.state):
            current = self._store.get(task_id)
            if current is not None and current.state == State.CANCELING:
                cancel.cancel()


class TaskReporter:
    """What one engine reports through (the engine's ProgressReporter)."""

    def __init__(self, writer: ProgressWriter, task_id: str, cancel: Cancellation) -> None:
        self._writer = writer
        self._task_id = task_id
        self._cancel = cancel

    def report(self, progress: Progress) -> None:
        self._writer.report(self._task_id, progress, self._cancel)
