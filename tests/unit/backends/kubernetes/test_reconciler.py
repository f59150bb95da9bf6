"""The Kubernetes reconciler's full comparison, against a cluster whose answers the test decides."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from tesk.backends.kubernetes.dispatch import Dispatcher
from tesk.backends.kubernetes.reconciler import Reconciler
from tesk.config import KubernetesConfig
from tesk.store.base import TaskRecord
from tesk.tes.models import Executor, Task
from tesk.tes.progress import Progress
from tesk.tes.states import State
from tests.fakes.memory_store import MemoryStore


class RacingCluster:
    """Lists no Job; while it lists, the Job appears and its taskmaster reports INITIALIZING.

    That is what a submit, a scheduled taskmaster and its first report look like to a
    comparison that is under way.
    """

    def __init__(self, store: MemoryStore, task_id: str) -> None:
        self._store = store
        self._task_id = task_id
        self.batch = SimpleNamespace(list_namespaced_job=self.list_jobs)
        self.core = SimpleNamespace(list_namespaced_config_map=self.unused)

    def list_jobs(self, namespace: str, **_: Any) -> dict[str, Any]:
        self._store.update(self._task_id, Progress(State.INITIALIZING, seq=1))
        return {"items": [], "metadata": {}}

    def unused(self, *_: Any, **__: Any) -> None:
        raise AssertionError("the comparison reads no ConfigMap list")

    # The Kube facade's calls the comparison makes.
    def list(self, kind: str, namespace: str, **query: Any) -> dict[str, Any]:
        assert kind == "jobs"
        return self.list_jobs(namespace, **query)

    def read(self, kind: str, namespace: str, name: str) -> None:
        assert kind == "configmaps"
        return  # the taskmaster wrote no status yet

    def to_dict(self, obj: dict[str, Any]) -> dict[str, Any]:
        return obj


def test_a_task_whose_job_appears_during_the_comparison_is_left_running() -> None:
    store = MemoryStore()
    task_id = "c0ffee00-0000-4000-8000-000000000001"
    task = Task(id=task_id, executors=[Executor(image="alpine", command=["true"])])
    store.create(TaskRecord(task_id, State.QUEUED, int(time.time() * 1_000_000), task))
    cluster = RacingCluster(store, task_id)
    submitted: list[str] = []

    class Launcher:
        def submit(self, record: TaskRecord) -> None:
            submitted.append(record.id)

    reconciler = Reconciler(
        cluster,  # type: ignore[arg-type]
        KubernetesConfig(),
        store,
        Launcher(),  # type: ignore[arg-type]
    )
    reconciler.resync()
    record = store.get(task_id)
    assert record is not None
    assert record.state == State.INITIALIZING, record.log
    assert submitted == []


class EmptyCluster(RacingCluster):
    """Lists no Job and changes nothing: the Jobs of the stored tasks do not exist."""

    def list_jobs(self, namespace: str, **_: Any) -> dict[str, Any]:
        return {"items": [], "metadata": {}}


class RecordingLauncher:
    def __init__(self) -> None:
        self.submitted: list[str] = []

    def submit(self, record: TaskRecord) -> None:
        self.submitted.append(record.id)


def _queued(store: MemoryStore, task_id: str, created_us: int = 1) -> None:
    task = Task(id=task_id, executors=[Executor(image="alpine", command=["true"])])
    store.create(TaskRecord(task_id, State.QUEUED, created_us, task, owner="alice"))


def _fair_reconciler(
    store: MemoryStore, launcher: RecordingLauncher, resubmit_after_s: float
) -> Reconciler:
    dispatcher = Dispatcher(store, launcher, limit=1, worker="kubernetes:ns/tesk")  # type: ignore[arg-type]
    return Reconciler(
        EmptyCluster(store, ""),  # type: ignore[arg-type]
        KubernetesConfig(max_running_tasks=1),
        store,
        launcher,  # type: ignore[arg-type]
        dispatcher=dispatcher,
        resubmit_after_s=resubmit_after_s,
    )


def test_a_task_waiting_in_the_queue_is_not_submitted_by_the_comparison() -> None:
    store = MemoryStore()
    _queued(store, "waiting")  # created long ago: without a queue it would be submitted again
    launcher = RecordingLauncher()
    _fair_reconciler(store, launcher, resubmit_after_s=0).resync()
    assert launcher.submitted == []
    record = store.get("waiting")
    assert record is not None
    assert record.state == State.QUEUED


def test_a_claim_whose_job_was_never_created_is_submitted_again_after_the_grace() -> None:
    store = MemoryStore()
    _queued(store, "claimed")
    assert store.claim("kubernetes:ns/tesk", 1)  # the process that claimed it died here
    launcher = RecordingLauncher()
    patient = _fair_reconciler(store, launcher, resubmit_after_s=3600)
    patient.resync()
    patient.resync()
    # Another replica creates the Job a moment after its claim: within the grace it is left.
    assert launcher.submitted == []
    record = store.get("claimed")
    assert record is not None
    assert record.state == State.INITIALIZING

    _fair_reconciler(store, launcher, resubmit_after_s=0).resync()
    assert launcher.submitted == ["claimed"]
    record = store.get("claimed")
    assert record is not None
    assert record.state == State.INITIALIZING


def test_a_claimed_task_its_taskmaster_reported_on_ends_when_its_job_is_gone() -> None:
    store = MemoryStore()
    _queued(store, "reported")
    store.claim("kubernetes:ns/tesk", 1)
    store.update("reported", Progress(State.RUNNING, seq=2))
    launcher = RecordingLauncher()
    _fair_reconciler(store, launcher, resubmit_after_s=0).resync()
    assert launcher.submitted == []
    record = store.get("reported")
    assert record is not None
    assert record.state == State.SYSTEM_ERROR
    assert record.log is not None
    assert record.log.system_logs == ["the taskmaster Job disappeared before the task finished"]
