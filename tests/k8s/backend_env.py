"""A Kubernetes backend wired to the test cluster, a store and TesService, for end-to-end tests.

The backend runs in the test process and talks to the real API server with the admin kubeconfig;
its taskmasters run `tesk taskmaster` (the TESK image) in the cluster with their own
ServiceAccount and start real filer and executor pods.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tesk.backends.kubernetes import KubernetesBackend
from tesk.config import (
    CustomConfig,
    FilerConfig,
    KubernetesConfig,
    LimitsConfig,
    RetriesConfig,
    ServiceInfoConfig,
)
from tesk.service import TesService
from tesk.store.base import TaskRecord, TaskStore
from tesk.tes.retries import RetryPolicy
from tesk.tes.states import State, is_terminal
from tests.fakes.memory_store import MemoryStore
from tests.k8s.realcluster import (
    EXECUTOR_IMAGE,
    EXECUTOR_SA,
    TASKMASTER_SA,
    TESK_IMAGE,
    TestCluster,
)

__all__ = ["EXECUTOR_SA", "TASKMASTER_SA", "Deployment", "deployment", "k8s_config", "task"]


def k8s_config(cluster: TestCluster, **overrides: Any) -> KubernetesConfig:
    settings: dict[str, Any] = {
        "namespace": cluster.namespace,
        "kubeconfig": cluster.kubeconfig_path,
        "image": TESK_IMAGE,
        "taskmaster_service_account": TASKMASTER_SA,
        "executor_service_account": EXECUTOR_SA,
        "pending_timeout_s": 60,
        "ttl_seconds_after_finished": 600,
        "resync_interval_s": 2.0,
    }
    settings.update(overrides)
    return KubernetesConfig.model_validate(settings)


@dataclass
class Deployment:
    """One API process: store, backend (started), service."""

    cluster: TestCluster
    config: CustomConfig
    store: TaskStore
    backend: KubernetesBackend
    service: TesService
    started: list[KubernetesBackend] = field(default_factory=list)

    def submit(self, body: dict[str, Any]) -> str:
        return self.service.create(body)

    def record(self, task_id: str) -> TaskRecord:
        record = self.store.get(task_id)
        assert record is not None
        return record

    def wait_state(
        self, task_id: str, done: Callable[[State], bool] = is_terminal, timeout: float = 60.0
    ) -> TaskRecord:
        end = time.monotonic() + timeout
        while True:
            record = self.record(task_id)
            if done(record.state):
                return record
            if time.monotonic() > end:
                raise AssertionError(
                    f"task {task_id} still {record.state} after {timeout} s; "
                    f"log: {record.log.dump() if record.log else None}"
                )
            time.sleep(0.05)

    def restart_backend(self) -> None:
        """A new API process: a new backend over the same store, started afresh."""
        self.backend.stop()
        self.backend = KubernetesBackend(self.config, self.store)
        self.service = make_service(self.store, self.backend, self.config)
        self.backend.start()


def make_service(store: TaskStore, backend: KubernetesBackend, config: CustomConfig) -> TesService:
    return TesService(
        store,
        backend,
        limits=config.limits,
        service_info=ServiceInfoConfig(),
        version="test",
        started_at=datetime.now(UTC),
        check_url=lambda _url, _for_output: None,
        storage=lambda: [],
        retries=RetryPolicy(**config.retries.model_dump()),
    )


@contextmanager
def deployment(
    cluster: TestCluster,
    *,
    store: TaskStore | None = None,
    start: bool = True,
    filer: FilerConfig | None = None,
    log_tail_bytes: int = 64 * 1024,
    retries: RetriesConfig | None = None,
    **k8s: Any,
) -> Iterator[Deployment]:
    config = CustomConfig(
        backend="kubernetes",
        kubernetes=k8s_config(cluster, **k8s),
        filer=filer or FilerConfig(),
        limits=LimitsConfig(log_tail_bytes=log_tail_bytes),
        retries=retries or RetriesConfig(),
    )
    store = store or MemoryStore()
    backend = KubernetesBackend(config, store)
    env = Deployment(cluster, config, store, backend, make_service(store, backend, config))
    if start:
        backend.start()
    try:
        yield env
    finally:
        env.backend.stop()


def task(*commands: list[str], **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "executors": [{"image": EXECUTOR_IMAGE, "command": command} for command in commands]
    }
    body.update(fields)
    return body
