"""A Kubernetes backend wired to a fake cluster, a store and TesService, for end-to-end tests.

The backend talks to the fake API server through the real `kubernetes` client; its taskmasters
run `tesk taskmaster` in fake-kubelet pods and start real filer and executor pods.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tesk.backends.kubernetes import KubernetesBackend
from tesk.config import CustomConfig, FilerConfig, KubernetesConfig, LimitsConfig, ServiceInfoConfig
from tesk.service import TesService
from tesk.store.base import TaskRecord, TaskStore
from tesk.tes.states import State, is_terminal
from tests.fakes.memory_store import MemoryStore
from tests.k8s.fakecluster import FakeCluster

NAMESPACE = "tesk"
TASKMASTER_SA = "tesk-taskmaster"
EXECUTOR_SA = "tesk-executor"


def service_account(name: str, namespace: str = NAMESPACE) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": namespace},
    }


def k8s_config(cluster: FakeCluster, **overrides: Any) -> KubernetesConfig:
    settings: dict[str, Any] = {
        "namespace": cluster.namespace,
        "kubeconfig": cluster.kubeconfig_path,
        "taskmaster_service_account": TASKMASTER_SA,
        "executor_service_account": EXECUTOR_SA,
        "pending_timeout_s": 30,
        "ttl_seconds_after_finished": 600,
        "resync_interval_s": 2.0,
        "volume_fs_group": None,
    }
    settings.update(overrides)
    return KubernetesConfig.model_validate(settings)


@dataclass
class Deployment:
    """One API process: store, backend (started), service."""

    cluster: FakeCluster
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
                    f"log: {record.log.dump() if record.log else None}; "
                    f"cluster errors: {self.cluster.errors}"
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
    )


@contextmanager
def deployment(
    cluster: FakeCluster,
    *,
    store: TaskStore | None = None,
    start: bool = True,
    filer: FilerConfig | None = None,
    log_tail_bytes: int = 64 * 1024,
    create_accounts: bool = True,
    **k8s: Any,
) -> Iterator[Deployment]:
    if create_accounts:
        cluster.apply(service_account(TASKMASTER_SA, cluster.namespace))
        cluster.apply(service_account(EXECUTOR_SA, cluster.namespace))
    config = CustomConfig(
        backend="kubernetes",
        kubernetes=k8s_config(cluster, **k8s),
        filer=filer or FilerConfig(),
        limits=LimitsConfig(log_tail_bytes=log_tail_bytes),
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
        "executors": [{"image": "busybox", "command": command} for command in commands]
    }
    body.update(fields)
    return body
