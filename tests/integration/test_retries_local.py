"""Retries on the local runner with a fault-injecting runtime, the SQLite store and the service.

The runtime of each attempt is scripted: attempt 1 loses its capacity (or cannot be run), the
next one completes. What clients see is read through TesService, as GetTask serves it.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tesk.backends.local.runner import Runner
from tesk.config import CustomConfig
from tesk.engine.runtime import CapacityLost, Runtime
from tesk.engine.usage import ExecutorUsage
from tesk.service import TesService
from tesk.store.sql import SqlStore
from tesk.tes.models import Task
from tesk.tes.retries import RetryPolicy
from tesk.tes.states import TERMINAL
from tests.fakes.fake_backend import FakeBackend
from tests.fakes.fake_runtime import FakeRuntime, Run, RuntimeFailure

EVICTED = "pod ex-0 was evicted: spot capacity reclaimed"


class Attempts:
    """Hands out one scripted runtime per attempt, in order."""

    def __init__(self, *scripts: Run | Exception) -> None:
        self._scripts = list(scripts)
        self.runtimes: list[FakeRuntime] = []
        self._lock = threading.Lock()

    def __call__(self, task: Task) -> Runtime:
        with self._lock:
            script = self._scripts[len(self.runtimes)]
            runtime = FakeRuntime(executors=[script])
            self.runtimes.append(runtime)
            return runtime


class Served:
    def __init__(self, tmp_path: Path) -> None:
        self.store = SqlStore(f"sqlite:///{tmp_path / 'tesk.db'}")
        self.runners: list[Runner] = []

    def run(self, attempts: Attempts, policy: RetryPolicy, body: dict[str, Any]) -> dict[str, Any]:
        """Run one task with a runner of its own (one runner at a time claims from the store)."""
        for earlier in self.runners:
            earlier.stop(1.0)
        runner = Runner(
            self.store,
            attempts,
            runner_id=f"local:test:{uuid.uuid4().hex[:8]}",
            max_concurrent=1,
            poll_interval_s=0.05,
            retries=policy,
        )
        self.runners.append(runner)
        service = self.service(policy)
        task_id = service.create(body)
        runner.start()
        deadline = time.monotonic() + 30
        while service.get(task_id, "MINIMAL")["state"] not in TERMINAL:
            assert time.monotonic() < deadline, service.get(task_id, "FULL")
            time.sleep(0.02)
        return service.get(task_id, "FULL")

    def service(self, policy: RetryPolicy) -> TesService:
        custom = CustomConfig()
        return TesService(
            self.store,
            FakeBackend(),
            limits=custom.limits,
            service_info=custom.service_info,
            version="test",
            started_at=datetime.now(UTC),
            check_url=lambda url, for_output: None,
            storage=lambda: [],
            retries=policy,
        )


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    served = Served(tmp_path)
    yield served
    served.runners[-1].stop(1.0)
    served.store.close()


def body(**resources: Any) -> dict[str, Any]:
    task: dict[str, Any] = {"executors": [{"image": "alpine", "command": ["echo", "hi"]}]}
    if resources:
        task["resources"] = resources
    return task


def usage(cpu: float) -> ExecutorUsage:
    return ExecutorUsage(cpu_seconds=cpu, peak_memory_bytes=1024)


def test_a_preempted_attempt_is_retried_and_the_second_completes(served: Served) -> None:
    attempts = Attempts(CapacityLost(EVICTED), Run(stdout="hi\n", usage=usage(0.25)))

    task = served.run(attempts, RetryPolicy(max_attempts=3), body())

    assert task["state"] == "COMPLETE"
    first, second = task["logs"]
    assert first["system_logs"] == [
        f"executor 0 lost its capacity (preempted): {EVICTED}",
        f"attempt 1 lost its capacity ({EVICTED}); retried as attempt 2",
    ]
    assert first["logs"] == []
    assert second["logs"][0]["stdout"] == "hi\n"
    assert "system_logs" not in second
    # Each attempt measured itself: only the second ran an executor to its end.
    assert "usage.cpu_seconds" not in first["metadata"]
    assert second["metadata"]["usage.cpu_seconds"] == "0.250"
    for log in (first, second):
        assert {"usage.wall_seconds", "usage.queued_seconds"} <= set(log["metadata"])
    assert len(attempts.runtimes) == 2
    assert all(r.calls[-1] == "cleanup" for r in attempts.runtimes)


def test_with_one_attempt_the_task_ends_preempted_with_one_log(served: Served) -> None:
    attempts = Attempts(CapacityLost(EVICTED), Run())

    task = served.run(
        attempts, RetryPolicy(max_attempts=3), body(backend_parameters={"max_attempts": "1"})
    )

    assert task["state"] == "PREEMPTED"
    [log] = task["logs"]
    assert log["system_logs"] == [f"executor 0 lost its capacity (preempted): {EVICTED}"]
    assert len(attempts.runtimes) == 1


def test_the_last_attempt_ends_preempted_after_every_retry(served: Served) -> None:
    attempts = Attempts(*[CapacityLost(f"lost {n}") for n in (1, 2)])

    task = served.run(attempts, RetryPolicy(max_attempts=2), body())

    assert task["state"] == "PREEMPTED"
    assert [log["system_logs"][-1] for log in task["logs"]] == [
        "attempt 1 lost its capacity (lost 1); retried as attempt 2",
        "executor 0 lost its capacity (preempted): lost 2",
    ]


def test_system_errors_are_retried_only_when_configured(served: Served) -> None:
    failing = RuntimeFailure("podman could not be started: no such file")

    kept = served.run(Attempts(failing, Run()), RetryPolicy(max_attempts=3), body())
    retried = served.run(
        Attempts(failing, Run()), RetryPolicy(max_attempts=3, system_errors=True), body()
    )

    assert (kept["state"], len(kept["logs"])) == ("SYSTEM_ERROR", 1)
    assert (retried["state"], len(retried["logs"])) == ("COMPLETE", 2)
    assert retried["logs"][0]["system_logs"][-1] == (
        f"attempt 1 could not be run ({failing}); retried as attempt 2"
    )


def test_a_command_that_failed_is_never_run_again(served: Served) -> None:
    attempts = Attempts(Run(exit_code=3), Run())

    task = served.run(attempts, RetryPolicy(max_attempts=3, system_errors=True), body())

    assert (task["state"], len(task["logs"])) == ("EXECUTOR_ERROR", 1)
    assert len(attempts.runtimes) == 1
