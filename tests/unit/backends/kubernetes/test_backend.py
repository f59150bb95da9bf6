"""The Kubernetes backend without a cluster: construction, backend_parameters at create."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest

from tesk.backends.kubernetes import KubernetesBackend
from tesk.config import CustomConfig, KubernetesConfig, ServiceInfoConfig
from tesk.service import TesService
from tesk.tes.errors import InvalidRequest
from tesk.tes.states import State
from tests.fakes.memory_store import MemoryStore


def make(**k8s: Any) -> tuple[TesService, KubernetesBackend, MemoryStore]:
    config = CustomConfig(
        backend="kubernetes", kubernetes=KubernetesConfig(kubeconfig="/nowhere", **k8s)
    )
    store = MemoryStore()
    backend = KubernetesBackend(config, store)
    service = TesService(
        store,
        backend,
        limits=config.limits,
        service_info=ServiceInfoConfig(),
        version="test",
        started_at=datetime.now(UTC),
        check_url=lambda _url, _out: None,
        storage=lambda: [],
    )
    return service, backend, store


def test_construction_does_no_io_and_starts_no_thread() -> None:
    before = threading.active_count()
    make()  # the kubeconfig does not exist: only first use would notice
    assert threading.active_count() == before


def test_service_info_advertises_the_parameters() -> None:
    service, _, _ = make()
    assert service.service_info()["tesResources_backend_parameters"] == [
        "gpu_count",
        "image_pull_secret",
        "max_attempts",
        "max_runtime_seconds",
        "node_selector",
        "tolerations",
    ]


def test_a_bad_parameter_is_refused_at_create_with_the_reason() -> None:
    service, _, store = make()
    body = {
        "executors": [{"image": "alpine", "command": ["true"]}],
        "resources": {"backend_parameters": {"GPU_COUNT": "lots"}},
    }
    with pytest.raises(
        InvalidRequest, match=r"backend_parameters: gpu_count: 'lots' is not a whole"
    ):
        service.create(body)
    assert store.find(set(State)) == []


def test_a_missing_kubeconfig_fails_submit_with_a_clear_reason() -> None:
    service, _, store = make()
    task_id = service.create({"executors": [{"image": "alpine", "command": ["true"]}]})
    record = store.get(task_id)
    assert record is not None
    assert record.state == State.SYSTEM_ERROR
    assert record.log is not None
    assert "no usable kubeconfig at /nowhere" in " ".join(record.log.system_logs or [])


def test_with_a_running_limit_submit_leaves_the_task_queued_without_a_cluster_call() -> None:
    # The kubeconfig does not exist: a Job created at submit would end the task SYSTEM_ERROR.
    service, _, store = make(max_running_tasks=3)
    task_id = service.create({"executors": [{"image": "alpine", "command": ["true"]}]})
    record = store.get(task_id)
    assert record is not None
    assert record.state == State.QUEUED
    assert record.log is None


def test_without_a_running_limit_submit_creates_the_job_at_once() -> None:
    service, _, store = make()
    task_id = service.create({"executors": [{"image": "alpine", "command": ["true"]}]})
    record = store.get(task_id)
    assert record is not None
    assert record.state == State.SYSTEM_ERROR  # it tried, and the kubeconfig is not there
