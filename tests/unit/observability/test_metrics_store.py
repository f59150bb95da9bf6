"""ObservedStore: every state change applied through the store is logged once and recorded."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any

import pytest

from tesk.config import MetricsConfig
from tesk.observability import prometheus
from tesk.observability.recording import Direction, TaskEnded
from tesk.observability.store import ObservedStore
from tesk.observability.wiring import process_recorder
from tesk.store.base import TaskRecord
from tesk.tes.models import ExecutorLog, Task, TaskLog
from tesk.tes.progress import AttemptFailure, Cause, Progress
from tesk.tes.retries import RetryPolicy
from tesk.tes.states import State
from tests.fakes.memory_store import MemoryStore

CREATED_US = 1_767_268_800_000_000  # 2026-01-01T12:00:00Z
START = "2026-01-01T12:00:30.000000Z"
END = "2026-01-01T12:02:00.000000Z"


@dataclass
class RecordingRecorder:
    calls: list[tuple[str, Any]] = field(default_factory=list)
    owners: list[str | None] = field(default_factory=list)  # of the tasks started
    fail: bool = False

    def task_created(self) -> None:
        self._call("created", None)

    def task_started(self, queue_wait_s: float, owner: str | None = None) -> None:
        self._call("started", queue_wait_s)
        self.owners.append(owner)

    def task_ended(self, ended: TaskEnded) -> None:
        self._call("ended", ended)

    def attempt_retried(self, reason: str) -> None:
        self._call("retried", reason)

    def transferred(self, direction: Direction, scheme: str, files: int, size: int) -> None:
        self._call("transferred", (direction, scheme, files, size))

    def transfer_failed(self, direction: Direction, count: int = 1) -> None:
        self._call("transfer_failed", (direction, count))

    def request_handled(self, operation: str, method: str, status: int, seconds: float) -> None:
        self._call("request", (operation, method, status))

    def _call(self, name: str, value: Any) -> None:
        if self.fail:
            raise RuntimeError("recorder broke")
        self.calls.append((name, value))


def record(task_id: str = "t1", state: State = State.QUEUED) -> TaskRecord:
    task = Task.model_validate(
        {"id": task_id, "executors": [{"image": "alpine", "command": ["true"]}]}
    )
    return TaskRecord(id=task_id, state=state, created_us=CREATED_US, task=task)


def log(*codes: int, end: str | None = END, system_logs: list[str] | None = None) -> TaskLog:
    return TaskLog(
        start_time=START,
        end_time=end,
        logs=[ExecutorLog(exit_code=code) for code in codes],
        system_logs=system_logs,
    )


def transitions(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str | None, str]]:
    return [
        (r.levelname, r.__dict__["from_state"], r.__dict__["to_state"])
        for r in caplog.records
        if r.name == "tesk.tasks" and "to_state" in r.__dict__
    ]


@pytest.fixture
def observed() -> tuple[ObservedStore, RecordingRecorder]:
    recorder = RecordingRecorder()
    return ObservedStore(MemoryStore(), recorder), recorder


def test_the_life_of_a_task(
    observed: tuple[ObservedStore, RecordingRecorder], caplog: pytest.LogCaptureFixture
) -> None:
    store, recorder = observed
    caplog.set_level(logging.INFO, "tesk.tasks")
    store.create(record())
    # The runner finds the task, claims it, and the engine reports; some reports repeat a state.
    assert [r.id for r in store.find({State.QUEUED})] == ["t1"]
    assert store.update("t1", Progress(State.INITIALIZING), expected={State.QUEUED}, worker="w")
    assert store.update("t1", Progress(State.INITIALIZING, seq=1, log=log(end=None)))
    assert store.update("t1", Progress(State.RUNNING, seq=2, log=log(end=None)))
    assert store.update("t1", Progress(State.RUNNING, seq=3, log=log(0, end=None)))
    assert store.update("t1", Progress(State.COMPLETE, seq=4, log=log(0, 2)))
    # Late or stale reports change nothing, and are neither logged nor counted.
    assert store.update("t1", Progress(State.RUNNING, seq=5)) is None
    assert store.update("t1", Progress(State.COMPLETE, seq=3)) is None

    assert transitions(caplog) == [
        ("INFO", None, "QUEUED"),
        ("INFO", "QUEUED", "INITIALIZING"),
        ("INFO", "INITIALIZING", "RUNNING"),
        ("INFO", "RUNNING", "COMPLETE"),
    ]
    names = [name for name, _ in recorder.calls]
    assert names == ["created", "started", "ended"]
    assert recorder.calls[1][1] > 0  # seconds since 2026-01-01 12:00
    assert recorder.calls[2][1] == TaskEnded(state="COMPLETE", run_s=90.0, exit_codes=(0, 2))
    assert "task t1: RUNNING -> COMPLETE" in caplog.text


def test_a_task_cancelled_in_the_queue_never_started(
    observed: tuple[ObservedStore, RecordingRecorder], caplog: pytest.LogCaptureFixture
) -> None:
    store, recorder = observed
    caplog.set_level(logging.INFO, "tesk.tasks")
    store.create(record())
    assert store.get("t1") is not None  # what the service does before a cancel
    assert store.update("t1", Progress(State.CANCELING), expected={State.QUEUED})
    assert store.update("t1", Progress(State.CANCELED), expected={State.CANCELING})
    assert recorder.calls[1:] == [("ended", TaskEnded(state="CANCELED"))]
    assert transitions(caplog)[1:] == [
        ("INFO", "QUEUED", "CANCELING"),
        ("INFO", "CANCELING", "CANCELED"),
    ]


def test_a_store_change_made_elsewhere_is_read_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    inner = MemoryStore()
    inner.create(record())
    inner.update("t1", Progress(State.RUNNING, seq=1, log=log(end=None)))
    recorder = RecordingRecorder()
    store = ObservedStore(inner, recorder)  # another process: it never saw the task
    caplog.set_level(logging.INFO, "tesk.tasks")
    assert store.update("t1", Progress(State.RUNNING, seq=2, log=log(0, end=None)))
    assert store.update(
        "t1",
        Progress(State.SYSTEM_ERROR, seq=3, log=log(0, system_logs=["disk full"])),
    )
    assert transitions(caplog) == [("WARNING", "RUNNING", "SYSTEM_ERROR")]
    assert "task t1: RUNNING -> SYSTEM_ERROR (disk full)" in caplog.text
    assert caplog.records[-1].__dict__["reason"] == "disk full"
    assert recorder.calls == [
        ("ended", TaskEnded(state="SYSTEM_ERROR", run_s=90.0, exit_codes=(0,)))
    ]


def test_a_skipped_start_is_taken_from_the_log(
    observed: tuple[ObservedStore, RecordingRecorder],
) -> None:
    store, recorder = observed
    store.create(record())
    assert store.update("t1", Progress(State.COMPLETE, seq=1, log=log(0)))
    assert recorder.calls[1] == ("started", 30.0)
    assert recorder.calls[2][0] == "ended"


def test_a_failing_recorder_never_breaks_a_stored_change(
    observed: tuple[ObservedStore, RecordingRecorder], caplog: pytest.LogCaptureFixture
) -> None:
    store, recorder = observed
    store.create(record())
    recorder.fail = True
    updated = store.update("t1", Progress(State.COMPLETE, seq=1, log=log(0)))
    assert updated is not None
    assert updated.state == State.COMPLETE
    assert "recording the change failed" in caplog.text


def test_it_forwards_the_store_protocol_and_extras() -> None:
    inner = MemoryStore()
    store = ObservedStore(inner, RecordingRecorder())
    store.create(record("a"))
    assert store.get("a") == inner.get("a")
    assert store._tasks is inner._tasks  # type: ignore[attr-defined]
    store.ping()
    store.close()


def test_a_finished_tasks_usage_is_recorded_for_its_owner(
    observed: tuple[ObservedStore, RecordingRecorder],
) -> None:
    store, recorder = observed
    store.create(dataclasses.replace(record(), owner="alice"))
    store.update("t1", Progress(State.INITIALIZING), expected={State.QUEUED}, worker="w")
    used = log(0)
    used.metadata = {
        "usage.cpu_seconds": "1.500",
        "usage.bytes_staged_in": "2048",
        "usage.bytes_staged_out": "12",
    }
    store.update("t1", Progress(State.COMPLETE, seq=2, log=used))
    assert recorder.owners == ["alice"]
    ended = recorder.calls[-1][1]
    assert (ended.owner, ended.cpu_seconds, ended.bytes_staged_in, ended.bytes_staged_out) == (
        "alice",
        1.5,
        2048,
        12,
    )


def test_owner_usage_reaches_prometheus() -> None:
    recorder = process_recorder(MetricsConfig())
    assert isinstance(recorder, prometheus.PrometheusRecorder)
    series = [
        ("tesk_owner_cpu_seconds_total", {"owner": "alice"}),
        ("tesk_owner_cpu_seconds_total", {"owner": ""}),
        ("tesk_owner_staged_bytes_total", {"owner": "alice", "direction": "inputs"}),
        ("tesk_owner_staged_bytes_total", {"owner": "alice", "direction": "outputs"}),
    ]

    def samples() -> list[float]:
        return [recorder.registry.get_sample_value(n, labels) or 0.0 for n, labels in series]

    before = samples()
    recorder.task_ended(
        TaskEnded(state="COMPLETE", owner="alice", cpu_seconds=1.5, bytes_staged_in=2048)
    )
    recorder.task_ended(TaskEnded(state="COMPLETE", cpu_seconds=0.25))
    grown = [after - old for after, old in zip(samples(), before, strict=True)]
    # Bytes out were not measured: nothing is added for them.
    assert grown == [1.5, 0.25, 2048, 0]


def test_queue_and_run_time_reach_prometheus_per_owner() -> None:
    recorder = process_recorder(MetricsConfig())
    assert isinstance(recorder, prometheus.PrometheusRecorder)
    series = [
        ("tesk_owner_tasks_started_total", {"owner": "alice"}),
        ("tesk_owner_queue_wait_seconds_total", {"owner": "alice"}),
        ("tesk_owner_tasks_started_total", {"owner": "bob"}),
        ("tesk_owner_queue_wait_seconds_total", {"owner": "bob"}),
        ("tesk_owner_run_seconds_total", {"owner": "alice"}),
        ("tesk_task_queue_wait_seconds_count", {}),
        ("tesk_task_duration_seconds_count", {"state": "COMPLETE"}),
    ]

    def samples() -> list[float]:
        return [recorder.registry.get_sample_value(n, labels) or 0.0 for n, labels in series]

    before = samples()
    recorder.task_started(30.0, "alice")
    recorder.task_started(10.0, "alice")
    recorder.task_started(2.5, "bob")
    recorder.task_ended(TaskEnded(state="COMPLETE", owner="alice", run_s=90.0))
    recorder.task_ended(TaskEnded(state="CANCELED", owner="alice"))  # never ran: no run time
    grown = [after - old for after, old in zip(samples(), before, strict=True)]
    assert grown == [2, 40.0, 1, 2.5, 90.0, 3, 1]


def test_a_retried_attempt_is_counted_by_reason_and_the_task_ends_once(
    observed: tuple[ObservedStore, RecordingRecorder], caplog: pytest.LogCaptureFixture
) -> None:
    store, recorder = observed
    caplog.set_level(logging.INFO, "tesk.tasks")
    policy = RetryPolicy(max_attempts=2)
    lost = AttemptFailure(Cause.CAPACITY_LOST, "evicted")
    store.create(record())
    assert store.update("t1", Progress(State.RUNNING, seq=1, attempt=1, log=log(end=None)))
    preempted = Progress(State.PREEMPTED, seq=2, attempt=1, log=log(), failure=lost)
    requeued = store.update("t1", preempted, retries=policy)
    assert requeued is not None
    assert requeued.state == State.QUEUED
    assert store.claim("w", 1)
    assert store.update("t1", Progress(State.COMPLETE, seq=3, attempt=2, log=log(0)))

    assert [name for name, _ in recorder.calls] == [
        "created",
        "started",
        "retried",
        "started",
        "ended",
    ]
    assert recorder.calls[2] == ("retried", "capacity_lost")
    assert ("WARNING", "RUNNING", "QUEUED") in transitions(caplog)
    assert "retried as attempt 2" in caplog.text


def test_retried_attempts_reach_prometheus() -> None:
    recorder = process_recorder(MetricsConfig())
    assert isinstance(recorder, prometheus.PrometheusRecorder)

    def count() -> float:
        labels = {"reason": "capacity_lost"}
        found = recorder.registry.get_sample_value("tesk_task_attempts_retried_total", labels)
        return found or 0.0

    before = count()
    recorder.attempt_retried("capacity_lost")
    assert count() - before == 1
