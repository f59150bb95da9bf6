"""TESK's queue on Kubernetes (kubernetes.max_running_tasks) over every store.

The dispatcher's Job creation goes to a recording launcher here; the real cluster runs the same
dispatcher in tests/k8s/test_fair_share.py.
"""

from __future__ import annotations

import threading

from tesk.backends.base import BackendError
from tesk.backends.kubernetes.dispatch import Dispatcher, claimed_without_report
from tesk.store.base import TaskRecord, TaskStore
from tesk.tes.progress import Progress
from tesk.tes.states import State
from tests.contract.conftest import OpenStore, make_record
from tests.contract.test_store_concurrency import run_threads


class Launcher:
    """Records the Jobs it is asked to create; refuses those of the tasks in `refuse`."""

    def __init__(self, refuse: set[str] | None = None) -> None:
        self.created: list[str] = []
        self._refuse = refuse or set()
        self._lock = threading.Lock()

    def submit(self, record: TaskRecord) -> None:
        if record.id in self._refuse:
            raise BackendError("the taskmaster Job could not be created: quota exceeded")
        with self._lock:
            self.created.append(record.id)


def dispatcher(store: TaskStore, launcher: Launcher, limit: int) -> Dispatcher:
    return Dispatcher(store, launcher, limit=limit, worker="kubernetes:ns/tesk")  # type: ignore[arg-type]


def queue(store: TaskStore, owner: str, *ids: str, since: int = 1_000) -> None:
    for offset, task_id in enumerate(ids):
        store.create(make_record(task_id, since + offset, owner=owner))


def finish(store: TaskStore, task_id: str) -> None:
    assert store.update(task_id, Progress(State.COMPLETE, seq=5)) is not None


def state(store: TaskStore, task_id: str) -> State:
    record = store.get(task_id)
    assert record is not None
    return record.state


def test_only_the_limit_starts_and_a_freed_slot_goes_to_the_owner_running_fewer(
    store: TaskStore,
) -> None:
    launcher = Launcher()
    fair = dispatcher(store, launcher, limit=2)
    queue(store, "alice", "a1", "a2", "a3", "a4", since=1_000)
    assert fair.dispatch() == ["a1", "a2"]
    queue(store, "bob", "b1", since=2_000)
    assert fair.dispatch() == []  # no slot free: nothing claimed
    assert [state(store, t) for t in ("a3", "a4", "b1")] == [State.QUEUED] * 3

    finish(store, "a1")
    # alice still runs a2, bob runs nothing: bob's single task goes before alice's backlog.
    assert fair.dispatch() == ["b1"]
    finish(store, "a2")
    finish(store, "b1")
    assert fair.dispatch() == ["a3", "a4"]
    assert launcher.created == ["a1", "a2", "b1", "a3", "a4"]


def test_free_slots_are_shared_between_the_owners_waiting(store: TaskStore) -> None:
    fair = dispatcher(store, Launcher(), limit=2)
    queue(store, "alice", "a1", "a2", "a3", since=1_000)
    queue(store, "bob", "b1", since=2_000)
    assert fair.dispatch() == ["a1", "b1"]


def test_with_one_slot_the_owners_waiting_take_turns(store: TaskStore) -> None:
    # With a single slot nobody runs anything when it frees: the owner served least recently
    # goes next, so bob's one task does not wait for alice's backlog.
    launcher = Launcher()
    fair = dispatcher(store, launcher, limit=1)
    queue(store, "alice", "a1", "a2", "a3", since=1_000)
    queue(store, "bob", "b1", since=2_000)
    for expected in ("a1", "b1", "a2", "a3"):
        assert fair.dispatch() == [expected]
        finish(store, expected)


def test_a_claimed_task_is_initializing_without_a_report_until_its_taskmaster_reports(
    store: TaskStore,
) -> None:
    fair = dispatcher(store, Launcher(), limit=1)
    queue(store, "alice", "a1")
    fair.dispatch()
    record = store.get("a1")
    assert record is not None
    assert record.worker == "kubernetes:ns/tesk"
    assert claimed_without_report(record)
    reported = store.update("a1", Progress(State.INITIALIZING, seq=1))
    assert reported is not None
    assert not claimed_without_report(reported)


def test_a_job_that_cannot_be_created_ends_its_task_with_the_reason_and_frees_the_slot(
    store: TaskStore,
) -> None:
    launcher = Launcher(refuse={"a1"})
    fair = dispatcher(store, launcher, limit=1)
    queue(store, "alice", "a1", "a2")

    assert fair.dispatch() == []
    record = store.get("a1")
    assert record is not None
    assert record.state == State.SYSTEM_ERROR
    assert record.log is not None
    assert record.log.system_logs == [
        "the backend did not accept the task: the taskmaster Job could not be created: "
        "quota exceeded"
    ]
    assert fair.dispatch() == ["a2"]


def test_a_task_cancelled_while_queued_never_gets_a_job(store: TaskStore) -> None:
    launcher = Launcher()
    fair = dispatcher(store, launcher, limit=5)
    queue(store, "alice", "a1", "a2")
    assert store.update("a1", Progress(State.CANCELING), expected={State.QUEUED}) is not None
    assert store.update("a1", Progress(State.CANCELED), expected={State.CANCELING}) is not None
    assert fair.dispatch() == ["a2"]
    assert launcher.created == ["a2"]


def test_replicas_dispatching_at_once_create_each_job_once(open_store: OpenStore) -> None:
    replicas = 4
    stores = [open_store() for _ in range(replicas)]
    ids = [f"t{i:02d}" for i in range(12)]
    queue(stores[0], "alice", *ids)
    launcher = Launcher()

    def replica(index: int) -> list[str]:
        fair = dispatcher(stores[index], launcher, limit=len(ids))
        return fair.dispatch()

    started = [task_id for batch in run_threads(replicas, replica) for task_id in batch]
    # Every replica counted no task started; what one claimed, the others' claims skipped.
    assert sorted(started) == ids
    assert sorted(launcher.created) == ids
