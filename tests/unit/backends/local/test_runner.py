"""The local runner's scheduling: when it looks at the store, and how much it claims at once.

A store that counts the runner's calls and a scripted runtime stand in for SQL and bwrap; the
runner's poll is a minute, so only hints and freed slots move it.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Collection, Iterator

import pytest

from tesk.backends.local.runner import Runner
from tesk.backends.local.wakeup import deliver
from tesk.store.base import TaskRecord
from tesk.tes.models import Executor, Task, timestamp
from tesk.tes.progress import Progress
from tesk.tes.states import ACTIVE, STARTED, State
from tests.fakes.fake_runtime import BLOCK, FakeRuntime, Run
from tests.fakes.memory_store import MemoryStore

RUNNER = "local:test:/data"


class CountingStore(MemoryStore):
    """Counts the lookups the runner makes (claim, find, get) and the limits it claims with."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()
        self.claim_limits: list[int] = []

    def claim(self, worker: str, limit: int) -> list[TaskRecord]:
        self.calls["claim"] += 1
        self.claim_limits.append(limit)
        return super().claim(worker, limit)

    def find(self, states: Collection[State], worker: str | None = None) -> list[TaskRecord]:
        self.calls["find"] += 1
        return super().find(states, worker)

    def get(self, task_id: str) -> TaskRecord | None:
        self.calls["get"] += 1
        return super().get(task_id)

    def lookups(self) -> int:
        return sum(self.calls.values())


class Setup:
    def __init__(self, script: Run | str, max_concurrent: int) -> None:
        self.store = CountingStore()
        self.script = script
        self.runner = Runner(
            self.store,
            lambda _task: FakeRuntime(executors=[self.script]),
            runner_id=RUNNER,
            max_concurrent=max_concurrent,
            poll_interval_s=60.0,
        )
        self._count = 0

    def create(self, *, hint: bool = True) -> str:
        self._count += 1
        task_id = f"task-{self._count:03d}"
        task = Task(
            id=task_id,
            creation_time=timestamp(),
            executors=[Executor(image="busybox", command=["true"])],
        )
        self.store.create(TaskRecord(task_id, State.QUEUED, self._count, task))
        if hint:
            self.runner.task_queued(task_id)
        return task_id

    def state(self, task_id: str) -> State:
        record = MemoryStore.get(self.store, task_id)
        assert record is not None
        return record.state

    def settle(self, condition: object, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if callable(condition) and condition():
                return
            time.sleep(0.01)
        raise AssertionError("the runner did not get there")

    def idle(self) -> None:
        """Until the loop thread has had every chance to act on what it was told."""
        time.sleep(0.3)


@pytest.fixture
def blocking() -> Iterator[Setup]:
    setup = Setup(BLOCK, max_concurrent=2)
    setup.runner.start()
    yield setup
    setup.runner.stop(0.5)


@pytest.fixture
def finishing() -> Iterator[Setup]:
    setup = Setup(Run(), max_concurrent=4)
    setup.runner.start()
    yield setup
    setup.runner.stop(0.5)


def test_hints_while_every_slot_is_busy_cost_no_store_call(blocking: Setup) -> None:
    first = [blocking.create(), blocking.create()]
    blocking.settle(lambda: sorted(blocking.runner.running()) == first)
    blocking.idle()
    before = blocking.store.lookups()

    waiting = [blocking.create() for _ in range(50)]
    blocking.idle()

    assert blocking.store.lookups() == before
    assert {blocking.state(task_id) for task_id in waiting} == {State.QUEUED}


def test_a_freed_slot_claims_the_next_task_at_once(blocking: Setup) -> None:
    first = [blocking.create(), blocking.create()]
    blocking.settle(lambda: len(blocking.runner.running()) == 2)
    waiting = [blocking.create() for _ in range(3)]
    blocking.idle()

    blocking.store.update(first[0], Progress(State.CANCELING), expected=ACTIVE)
    blocking.runner.task_canceling(first[0])

    blocking.settle(lambda: blocking.state(first[0]) == State.CANCELED)
    blocking.settle(lambda: blocking.state(waiting[0]) in STARTED)
    assert sorted(blocking.runner.running()) == [first[1], waiting[0]]
    assert blocking.store.claim_limits[-1] == 1
    assert [blocking.state(task_id) for task_id in waiting[1:]] == [State.QUEUED] * 2


def test_one_claim_takes_as_many_tasks_as_slots_are_free(blocking: Setup) -> None:
    blocking.idle()
    claims = blocking.store.calls["claim"]
    created = [blocking.create(hint=False) for _ in range(3)]
    blocking.runner.task_queued(created[-1])

    blocking.settle(lambda: len(blocking.runner.running()) == 2)
    blocking.idle()

    assert blocking.store.calls["claim"] == claims + 1
    assert blocking.store.claim_limits[-1] == 2
    assert blocking.state(created[2]) == State.QUEUED


def test_a_slot_that_frees_with_nothing_queued_looks_at_nothing(finishing: Setup) -> None:
    finishing.idle()
    task_id = finishing.create()
    finishing.settle(lambda: finishing.state(task_id) == State.COMPLETE)
    finishing.settle(lambda: finishing.runner.running() == [])
    finishing.idle()
    before = finishing.store.lookups()

    # The engine ended and freed its slot; the last claim found nothing more: no look.
    finishing.idle()
    assert finishing.store.lookups() == before


def test_every_task_of_a_burst_runs(finishing: Setup) -> None:
    created: list[str] = []
    lock = threading.Lock()

    def post() -> None:
        for _ in range(25):
            task_id = finishing.create()
            with lock:
                created.append(task_id)

    posters = [threading.Thread(target=post) for _ in range(4)]
    for thread in posters:
        thread.start()
    for thread in posters:
        thread.join()

    finishing.settle(lambda: {finishing.state(task_id) for task_id in created} == {State.COMPLETE})
    assert len(set(created)) == 100


def test_a_cancel_hint_for_another_runners_task_changes_nothing(blocking: Setup) -> None:
    task_id = blocking.create(hint=False)
    blocking.store.update(task_id, Progress(State.RUNNING), worker="local:elsewhere:/data")
    blocking.store.update(task_id, Progress(State.CANCELING))

    blocking.runner.task_canceling(task_id)
    blocking.idle()

    assert blocking.state(task_id) == State.CANCELING


class Hints:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def task_queued(self, task_id: str) -> None:
        self.seen.append(("queued", task_id))

    def task_canceling(self, task_id: str) -> None:
        self.seen.append(("canceling", task_id))


def test_datagrams_become_the_hints_they_name() -> None:
    hints = Hints()
    for message in ["queued t1", "cancel t2", "cancel", "nonsense", ""]:
        deliver(message, hints)
    assert hints.seen == [
        ("queued", "t1"),
        ("canceling", "t2"),
        ("queued", ""),
        ("queued", ""),
        ("queued", ""),
    ]
