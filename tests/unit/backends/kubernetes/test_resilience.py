"""The Kubernetes backend's handling of a flaky API server and of disrupted taskmasters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import urllib3
from kubernetes.client.exceptions import ApiException

from tesk.backends.kubernetes import client as kclient
from tesk.backends.kubernetes.filerpod import unwritable_volume
from tesk.backends.kubernetes.reconciler import Reconciler
from tesk.backends.kubernetes.taskmaster import _started_executors
from tesk.config import KubernetesConfig
from tesk.tes.models import ExecutorLog, TaskLog
from tesk.tes.progress import Progress
from tesk.tes.states import State
from tests.fakes.memory_store import MemoryStore


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kclient.time, "sleep", lambda _s: None)


def flaky(failures: list[BaseException], result: str = "ok") -> Any:
    calls: list[int] = []

    def call() -> str:
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return result

    call.calls = calls  # type: ignore[attr-defined]
    return call


def test_transient_failures_are_retried_until_the_call_works() -> None:
    call = flaky(
        [
            urllib3.exceptions.ProtocolError("connection reset"),
            ApiException(status=503, reason="Service Unavailable"),
            urllib3.exceptions.ReadTimeoutError(None, "/", "read timed out"),  # type: ignore[arg-type]
        ]
    )
    assert kclient.retrying(call, "a read") == "ok"
    assert len(call.calls) == 4


def test_an_answer_of_the_api_server_is_not_retried() -> None:
    call = flaky([ApiException(status=403, reason="Forbidden")])
    with pytest.raises(ApiException):
        kclient.retrying(call, "a read")
    assert len(call.calls) == 1


def test_retries_end_after_the_last_attempt() -> None:
    call = flaky([ConnectionResetError("reset")] * 3)
    with pytest.raises(ConnectionResetError):
        kclient.retrying(call, "a read", attempts=3)
    assert len(call.calls) == 3


def _progress(state: State, ended: int) -> Progress:
    logs = [ExecutorLog(exit_code=0) for _ in range(ended)]
    return Progress(state, seq=4, log=TaskLog(logs=logs))


def test_a_replacement_taskmaster_knows_which_executors_may_have_run() -> None:
    assert _started_executors(None) == 0
    assert _started_executors(_progress(State.INITIALIZING, 0)) == 0
    # RUNNING: the next executor may have been started when the predecessor was disrupted.
    assert _started_executors(_progress(State.RUNNING, 0)) == 1
    assert _started_executors(_progress(State.RUNNING, 2)) == 3


def test_a_writable_volume_root_is_no_problem(tmp_path: Path) -> None:
    # Unwritable roots are shown on the test cluster (tests/k8s, the no-fsGroup storage class).
    assert unwritable_volume(tmp_path) is None


class Jobs:
    def __init__(self) -> None:
        self.deleted: list[tuple[str, str]] = []

    def delete(self, task_id: str, attempt: int = 1, propagation: str = "Foreground") -> bool:
        self.deleted.append((task_id, propagation))
        return True


class NoCluster:
    def __init__(self) -> None:
        self.batch = self
        self.core = self

    def list_namespaced_job(self, *_: Any, **__: Any) -> None:
        raise AssertionError("not listed in this test")

    list_namespaced_config_map = list_namespaced_job


def _job(task_id: str, deleting_since: datetime | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": f"tesk-{task_id}",
        "labels": {"tesk.io/task-id": task_id},
        "creationTimestamp": "2026-01-01T00:00:00Z",
    }
    if deleting_since is not None:
        metadata["deletionTimestamp"] = deleting_since.isoformat().replace("+00:00", "Z")
    return {"metadata": metadata, "status": {}}


def test_a_foreground_deletion_stuck_past_the_cancel_timeout_is_let_go_once() -> None:
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    jobs = Jobs()
    reconciler = Reconciler(
        NoCluster(),  # type: ignore[arg-type]
        KubernetesConfig(cancel_timeout_s=30),
        MemoryStore(),
        jobs,  # type: ignore[arg-type]
        clock=lambda: now,
    )
    stuck = _job("a", now - timedelta(seconds=31))
    recent = _job("b", now - timedelta(seconds=5))
    alive = _job("c", None)
    reconciler.check_stuck_deletions([stuck, recent, alive])
    reconciler.check_stuck_deletions([stuck, recent, alive])
    assert jobs.deleted == [("a", "Background")]
