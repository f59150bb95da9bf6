"""Prometheus metrics: the recorder that counts, and what /metrics serves.

`tesk serve` runs several processes: gunicorn workers answer API requests and the serving
process runs tasks. Counters and histograms therefore use prometheus-client's multiprocess
mode: `tesk serve` gives all its processes one PROMETHEUS_MULTIPROC_DIR (see
`prepare_multiprocess_dir`), each process writes its values to its own files there, and the
worker answering /metrics adds them all up. How many tasks are in each active state is not
counted at all but read from the task store when /metrics is scraped, so it is right whatever
process changed a task, and after restarts.

Importing this module imports prometheus_client, which decides at import time whether to run in
multiprocess mode: a process must set PROMETHEUS_MULTIPROC_DIR before it imports this module.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    values,
)
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from tesk.observability.multiproc import ENV_MULTIPROC_DIR, multiprocess_dir
from tesk.observability.recording import Direction, TaskEnded
from tesk.store.base import TaskStore
from tesk.tes.states import ACTIVE, State

CONTENT_TYPE = CONTENT_TYPE_LATEST

GAUGE_STATES: tuple[State, ...] = (*sorted(ACTIVE, key=list(State).index), State.CANCELING)
"""The states `tesk_tasks` reports: those a task passes through (final states are counted by
tesk_tasks_finished_total instead, as their number only grows)."""

_RUN_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 28800, 86400)
_WAIT_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800, 3600, 14400)


class PrometheusRecorder:
    """The Recorder that keeps Prometheus counters and histograms (one per process)."""

    def __init__(self) -> None:
        if multiprocess_dir() is not None and not getattr(values.ValueClass, "_multiprocess", 0):
            raise RuntimeError(
                f"{ENV_MULTIPROC_DIR} was set after prometheus_client was imported; set it first"
            )
        # `_created` timestamps double every series and say little here.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.created = Counter(
            "tesk_tasks_created", "Tasks accepted by CreateTask.", registry=registry
        )
        self.finished = Counter(
            "tesk_tasks_finished",
            "Tasks that reached a final state, by that state.",
            ["state"],
            registry=registry,
        )
        self.retried = Counter(
            "tesk_task_attempts_retried",
            "Attempts of tasks that ended and were run again as a new attempt, by reason.",
            ["reason"],
            registry=registry,
        )
        self.queue_wait = Histogram(
            "tesk_task_queue_wait_seconds",
            "Time from creation until an engine took the task.",
            buckets=_WAIT_BUCKETS,
            registry=registry,
        )
        self.run_time = Histogram(
            "tesk_task_duration_seconds",
            "Time from the engine's start of a task to its end, by final state.",
            ["state"],
            buckets=_RUN_BUCKETS,
            registry=registry,
        )
        self.exits = Counter(
            "tesk_executor_exits",
            "Executors that ran to an end, by exit code.",
            ["exit_code"],
            registry=registry,
        )
        # Per owner as counters, not histograms: one series per owner instead of one per bucket.
        # Their ratios give each owner's mean wait, which shows whether fair share works.
        self.owner_started = Counter(
            "tesk_owner_tasks_started",
            "Tasks that left the queue for an engine, by owner.",
            ["owner"],
            registry=registry,
        )
        self.owner_queue_wait = Counter(
            "tesk_owner_queue_wait_seconds",
            "Seconds those tasks waited QUEUED, by owner.",
            ["owner"],
            registry=registry,
        )
        self.owner_run = Counter(
            "tesk_owner_run_seconds",
            "Seconds from the engine's start to the end of finished tasks, by owner.",
            ["owner"],
            registry=registry,
        )
        self.owner_cpu = Counter(
            "tesk_owner_cpu_seconds",
            "CPU seconds of the executors of finished tasks, by owner (where measured).",
            ["owner"],
            registry=registry,
        )
        self.owner_bytes = Counter(
            "tesk_owner_staged_bytes",
            "Bytes staged in and out for finished tasks, by owner and direction.",
            ["owner", "direction"],
            registry=registry,
        )
        self.filer_files = Counter(
            "tesk_filer_files",
            "Files staged by the filer, by direction and URL scheme.",
            ["direction", "scheme"],
            registry=registry,
        )
        self.filer_bytes = Counter(
            "tesk_filer_bytes",
            "Bytes staged by the filer, by direction and URL scheme.",
            ["direction", "scheme"],
            registry=registry,
        )
        self.filer_errors = Counter(
            "tesk_filer_errors",
            "Inputs or outputs the filer could not stage, by direction.",
            ["direction"],
            registry=registry,
        )
        self.requests = Histogram(
            "tesk_http_request_duration_seconds",
            "API requests by TES operationId (or route), method and status, and their latency.",
            ["operation", "method", "status"],
            registry=registry,
        )

    def task_created(self) -> None:
        self.created.inc()

    def task_started(self, queue_wait_s: float, owner: str | None = None) -> None:
        self.queue_wait.observe(queue_wait_s)
        self.owner_started.labels(owner or "").inc()
        self.owner_queue_wait.labels(owner or "").inc(queue_wait_s)

    def task_ended(self, ended: TaskEnded) -> None:
        self.finished.labels(ended.state).inc()
        owner = ended.owner or ""
        if ended.run_s is not None:
            self.run_time.labels(ended.state).observe(ended.run_s)
            self.owner_run.labels(owner).inc(ended.run_s)
        for code in ended.exit_codes:
            self.exits.labels(exit_code_label(code)).inc()
        if ended.cpu_seconds is not None:
            self.owner_cpu.labels(owner).inc(ended.cpu_seconds)
        for direction, size in (
            ("inputs", ended.bytes_staged_in),
            ("outputs", ended.bytes_staged_out),
        ):
            if size is not None:
                self.owner_bytes.labels(owner, direction).inc(size)

    def attempt_retried(self, reason: str) -> None:
        self.retried.labels(reason).inc()

    def transferred(self, direction: Direction, scheme: str, files: int, size: int) -> None:
        self.filer_files.labels(direction, scheme).inc(files)
        self.filer_bytes.labels(direction, scheme).inc(size)

    def transfer_failed(self, direction: Direction, count: int = 1) -> None:
        self.filer_errors.labels(direction).inc(count)

    def request_handled(self, operation: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(operation, method, str(status)).observe(seconds)


def exit_code_label(code: int) -> str:
    """Exit codes as labels: 0..255 as themselves, anything else (signals as -N) `other`."""
    return str(code) if 0 <= code <= 255 else "other"


# -- /metrics -------------------------------------------------------------------------------------


class StoreCollector(Collector):
    """At scrape time: tasks per active state, read from the store, and whether it answered."""

    def __init__(self, store: TaskStore) -> None:
        self._store = store

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "tesk_store_up", "Whether the task store answered the last scrape (1) or not (0)."
        )
        try:
            counts = self._store.count_by_state(GAUGE_STATES)
        except Exception:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        tasks = GaugeMetricFamily(
            "tesk_tasks",
            "Tasks in each non-final state, read from the task store.",
            labels=["state"],
        )
        for state in GAUGE_STATES:
            tasks.add_metric([state.value], counts.get(state, 0))
        yield tasks


class _BuildInfo(Collector):
    def __init__(self, version: str) -> None:
        self._version = version

    def collect(self) -> Iterator[Metric]:
        yield InfoMetricFamily(
            "tesk_build", "The TESK version serving.", {"version": self._version}
        )


def exposition(recorder: PrometheusRecorder | None, store: TaskStore, version: str) -> bytes:
    """The text /metrics answers: every process's counters, and the store's gauges."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir() is not None:
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    elif recorder is not None:
        registry.register(recorder.registry)
    registry.register(StoreCollector(store))
    registry.register(_BuildInfo(version))
    return generate_latest(registry)
