"""The Kubernetes reconciler's full comparison, against a cluster whose answers the test decides."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

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
