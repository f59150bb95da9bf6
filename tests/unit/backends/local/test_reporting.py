"""The local runner's progress writer: latest snapshot wins, the final one is stored at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Collection

from tesk.backends.local.reporting import ProgressWriter
from tesk.engine.cancellation import Cancellation
from tesk.store.base import TaskRecord
from tesk.tes.models import Executor, Task, timestamp
from tesk.tes.progress import Progress
from tesk.tes.retries import RetryPolicy
from tesk.tes.states import State
from tests.fakes.memory_store import MemoryStore


class GatedStore(MemoryStore):
    """Holds the first write until `gate` opens; records the sequence of every write."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.writing = threading.Event()
        self.written: list[int | None] = []

    def update(
        self,
        task_id: str,
        progress: Progress,
        *,
        expected: Collection[State] | None = None,
        worker: str | None = None,
        retries: RetryPolicy | None = None,
    ) -> TaskRecord | None:
        self.writing.set()
        assert self.gate.wait(10)
        self.written.append(progress.seq)
        return super().update(task_id, progress, expected=expected, worker=worker, retries=retries)


def stored(store: MemoryStore, state: State = State.INITIALIZING) -> str:
    task = Task(id="t1", creation_time=timestamp(), executors=[Executor(image="x", command=["y"])])
    store.create(TaskRecord("t1", state, 1, task))
    return "t1"


def test_snapshots_a_final_report_overtakes_are_never_stored() -> None:
    store = GatedStore()
    task_id = stored(store)
    writer = ProgressWriter(store)
    writer.start()
    reporter = writer.reporter(task_id, Cancellation())

    reporter.report(Progress(State.INITIALIZING, seq=1))
    assert store.writing.wait(5)  # the writer holds seq 1 at the gate
    reporter.report(Progress(State.RUNNING, seq=2))
    reporter.report(Progress(State.RUNNING, seq=3))
    final = threading.Thread(target=reporter.report, args=(Progress(State.COMPLETE, seq=4),))
    final.start()
    time.sleep(0.1)
    store.gate.set()
    final.join(5)
    writer.stop()

    assert store.written == [1, 4] or store.written == [4, 1]
    record = store.get(task_id)
    assert record is not None
    assert (record.state, record.seq) == (State.COMPLETE, 4)


def test_a_snapshot_is_stored_soon_without_a_newer_one() -> None:
    store = GatedStore()
    store.gate.set()
    task_id = stored(store)
    writer = ProgressWriter(store)
    writer.start()
    writer.reporter(task_id, Cancellation()).report(Progress(State.RUNNING, seq=1))

    deadline = time.monotonic() + 5
    while store.written != [1] and time.monotonic() < deadline:
        time.sleep(0.01)
    writer.stop()
    record = store.get(task_id)
    assert record is not None
    assert (record.state, record.seq) == (State.RUNNING, 1)


def test_a_report_refused_because_the_task_is_canceling_cancels_it() -> None:
    store = MemoryStore()
    task_id = stored(store, State.CANCELING)
    writer = ProgressWriter(store)
    writer.start()
    cancel = Cancellation()
    writer.reporter(task_id, cancel).report(Progress(State.RUNNING, seq=1))

    deadline = time.monotonic() + 5
    while not cancel.requested and time.monotonic() < deadline:
        time.sleep(0.01)
    writer.stop()
    assert cancel.requested


def test_after_stop_reports_are_stored_by_the_caller() -> None:
    store = MemoryStore()
    task_id = stored(store)
    writer = ProgressWriter(store)
    writer.start()
    writer.stop()
    writer.reporter(task_id, Cancellation()).report(Progress(State.RUNNING, seq=1))
    record = store.get(task_id)
    assert record is not None
    assert record.state == State.RUNNING
