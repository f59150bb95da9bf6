"""/metrics: scraped from the app after tasks are created and finish, requests and transfers.

The Prometheus recorder is one per process, so these tests compare values before and after.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from connexion import App
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from tesk import __version__
from tesk.app import create_app
from tesk.config import CustomConfig, MetricsConfig
from tesk.engine.cancellation import Cancellation
from tesk.engine.stages import InputsStaged, OutputsStaged, StageError
from tesk.observability import prometheus
from tesk.observability.stager import ObservedStager, scheme_of
from tesk.observability.store import ObservedStore
from tesk.observability.wiring import observe_store, process_recorder
from tesk.tes.models import ExecutorLog, FileType, OutputFileLog, Task, TaskLog
from tesk.tes.progress import Progress
from tesk.tes.states import State
from tests.fakes.fake_backend import FakeBackend
from tests.unit.api.support import FlakyStore, UrlChecks, task_body

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: FlaskClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    samples: Samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


class Served:
    def __init__(self, custom: CustomConfig | None = None) -> None:
        self.custom = custom or CustomConfig()
        self.inner = FlakyStore()
        self.store: ObservedStore = observe_store(self.inner, self.custom)
        self.backend = FakeBackend()
        self.app: App = create_app(
            self.custom,
            store=self.store,
            backend=self.backend,
            check_url=UrlChecks(),
            storage=lambda: [],
        )
        self.client = self.app.app.test_client()

    def create(self, **fields: object) -> str:
        response = self.client.post("/ga4gh/tes/v1/tasks", json=task_body(**fields))
        assert response.status_code == 200
        task_id: str = response.get_json()["id"]
        return task_id


@pytest.fixture
def served() -> Served:
    return Served()


def test_task_counts_durations_and_exit_codes(served: Served) -> None:
    before = scrape(served.client)
    first, second, third = served.create(), served.create(), served.create()
    store = served.store

    middle = scrape(served.client)
    assert (
        value(middle, "tesk_tasks_created_total") - value(before, "tesk_tasks_created_total") == 3
    )
    assert value(middle, "tesk_tasks", state="QUEUED") == 3
    assert value(middle, "tesk_tasks", state="RUNNING") == 0

    assert store.update(first, Progress(State.INITIALIZING), expected={State.QUEUED})
    log = TaskLog(
        start_time="2026-01-01T12:00:00Z",
        end_time="2026-01-01T12:00:42Z",
        logs=[ExecutorLog(exit_code=0), ExecutorLog(exit_code=2), ExecutorLog(exit_code=-9)],
    )
    assert store.update(first, Progress(State.RUNNING, seq=1, log=log))
    assert store.update(second, Progress(State.RUNNING, seq=1, log=log))
    running = scrape(served.client)
    assert value(running, "tesk_tasks", state="RUNNING") == 2
    assert value(running, "tesk_tasks", state="QUEUED") == 1

    assert store.update(first, Progress(State.COMPLETE, seq=2, log=log))
    assert served.client.post(f"/ga4gh/tes/v1/tasks/{third}:cancel").status_code == 200
    assert store.update(third, Progress(State.CANCELED), expected={State.CANCELING})
    after = scrape(served.client)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert value(after, "tesk_tasks", state="RUNNING") == 1
    assert value(after, "tesk_tasks", state="QUEUED") == 0
    assert value(after, "tesk_tasks", state="CANCELING") == 0
    assert grew("tesk_tasks_finished_total", state="COMPLETE") == 1
    assert grew("tesk_tasks_finished_total", state="CANCELED") == 1
    assert grew("tesk_task_duration_seconds_count", state="COMPLETE") == 1
    assert grew("tesk_task_duration_seconds_sum", state="COMPLETE") == 42
    assert grew("tesk_task_duration_seconds_count", state="CANCELED") == 0  # never started
    assert grew("tesk_task_queue_wait_seconds_count") == 2  # first (claimed), second (ran)
    assert grew("tesk_executor_exits_total", exit_code="0") == 1
    assert grew("tesk_executor_exits_total", exit_code="2") == 1
    assert grew("tesk_executor_exits_total", exit_code="other") == 1
    assert value(after, "tesk_store_up") == 1
    assert value(after, "tesk_build_info", version=__version__) == 1


def test_requests_by_operation_method_and_status(served: Served) -> None:
    before = scrape(served.client)
    served.create()
    client = served.client
    assert client.get("/ga4gh/tes/v1/tasks/nope").status_code == 404
    assert client.get("/v1/tasks?page_size=0").status_code == 400
    assert client.get("/no/such/route").status_code == 404
    assert client.get("/ga4gh/tes/v1/service-info").status_code == 200
    assert client.get("/healthz").status_code == 200
    after = scrape(served.client)

    def count(operation: str, method: str, status: str) -> float:
        labels = {"operation": operation, "method": method, "status": status}
        name = "tesk_http_request_duration_seconds_count"
        return value(after, name, **labels) - value(before, name, **labels)

    assert count("CreateTask", "POST", "200") == 1
    assert count("GetTask", "GET", "404") == 1
    assert count("ListTasks", "GET", "400") == 1
    assert count("unmatched", "GET", "404") == 1
    assert count("GetServiceInfo", "GET", "200") == 1
    assert count("healthz", "GET", "200") == 1
    # The scrape before this one was counted too, under its own route name.
    assert count("metrics", "GET", "200") == 1


def test_a_store_that_does_not_answer(served: Served) -> None:
    served.inner.down = True
    after = scrape(served.client)
    assert value(after, "tesk_store_up") == 0
    assert not [key for key in after if key[0] == "tesk_tasks"]


def test_metrics_can_be_switched_off() -> None:
    off = Served(CustomConfig(metrics=MetricsConfig(enabled=False)))
    assert off.client.get("/metrics").status_code == 404
    assert off.create()
    assert not isinstance(
        process_recorder(MetricsConfig(enabled=False)), prometheus.PrometheusRecorder
    )
    # Switching on again gives the process's real one.
    assert isinstance(process_recorder(MetricsConfig()), prometheus.PrometheusRecorder)


def test_exit_code_labels() -> None:
    assert [prometheus.exit_code_label(c) for c in (0, 1, 255, 256, -9)] == [
        "0",
        "1",
        "255",
        "other",
        "other",
    ]


# -- the filer stages ---------------------------------------------------------------------------


class ScriptedStages:
    """Writes what a filer would into the volume, or fails as told."""

    def __init__(self, fail_inputs: bool = False, output_errors: tuple[str, ...] = ()) -> None:
        self.fail_inputs = fail_inputs
        self.output_errors = output_errors

    def stage_inputs(self, task: Task, volume_root: Path, cancel: Cancellation) -> InputsStaged:
        if self.fail_inputs:
            raise StageError("input /data/a (s3://b/a): not found")
        (volume_root / "data" / "dir" / "sub").mkdir(parents=True)
        (volume_root / "data" / "a").write_bytes(b"x" * 10)
        (volume_root / "data" / "inline").write_text("hello")
        (volume_root / "data" / "dir" / "one").write_bytes(b"y" * 100)
        (volume_root / "data" / "dir" / "sub" / "two").write_bytes(b"z" * 1000)
        return InputsStaged(
            (FileType.FILE, FileType.FILE, FileType.DIRECTORY), ((1, 10), (1, 5), (2, 1100))
        )

    def stage_outputs(
        self, task: Task, volume_root: Path, executors_failed: bool, cancel: Cancellation
    ) -> OutputsStaged:
        return OutputsStaged(
            outputs=(
                OutputFileLog(url="s3://b/o/1", path="/data/o/1", size_bytes="7"),
                OutputFileLog(url="s3://b/o/2", path="/data/o/2", size_bytes="8"),
                OutputFileLog(url="file:///srv/o", path="/data/o3", size_bytes="5"),
            ),
            errors=self.output_errors,
        )


STAGED = Task.model_validate(
    {
        "id": "t",
        "executors": [{"image": "a", "command": ["true"]}],
        "inputs": [
            {"path": "/data/a", "url": "s3://b/a"},
            {"path": "/data/inline", "content": "hello"},
            {"path": "/data/dir", "url": "https://h/dir/", "type": "DIRECTORY"},
        ],
    }
)


def test_filer_bytes_files_and_errors_by_direction_and_scheme(tmp_path: Path) -> None:
    recorder = process_recorder(MetricsConfig())
    assert isinstance(recorder, prometheus.PrometheusRecorder)

    def sample(name: str, **labels: str) -> float:
        return recorder.registry.get_sample_value(name, labels) or 0.0

    names = [
        ("tesk_filer_bytes_total", {"direction": "inputs", "scheme": "s3"}),
        ("tesk_filer_bytes_total", {"direction": "inputs", "scheme": "content"}),
        ("tesk_filer_bytes_total", {"direction": "inputs", "scheme": "https"}),
        ("tesk_filer_files_total", {"direction": "inputs", "scheme": "https"}),
        ("tesk_filer_bytes_total", {"direction": "outputs", "scheme": "s3"}),
        ("tesk_filer_files_total", {"direction": "outputs", "scheme": "s3"}),
        ("tesk_filer_bytes_total", {"direction": "outputs", "scheme": "file"}),
        ("tesk_filer_errors_total", {"direction": "inputs"}),
        ("tesk_filer_errors_total", {"direction": "outputs"}),
    ]
    before = [sample(name, **labels) for name, labels in names]

    stager = ObservedStager(ScriptedStages(output_errors=("output /data/x: denied",)), recorder)
    assert (
        stager.stage_inputs(STAGED, tmp_path, Cancellation()).input_types[2] == FileType.DIRECTORY
    )
    assert len(stager.stage_outputs(STAGED, tmp_path, False, Cancellation()).outputs) == 3
    failing = ObservedStager(ScriptedStages(fail_inputs=True), recorder)
    with pytest.raises(StageError):
        failing.stage_inputs(STAGED, tmp_path, Cancellation())

    grown = [
        sample(name, **labels) - old for (name, labels), old in zip(names, before, strict=True)
    ]
    assert grown == [10, 5, 1100, 2, 15, 2, 5, 1, 1]


@pytest.mark.parametrize(
    ("url", "label"),
    [
        ("s3://b/k", "s3"),
        ("HTTPS://h/x", "https"),
        ("/abs/path", "file"),
        ("weird+scheme://x", "other"),
        ("ftp://u:p@h/x", "ftp"),
    ],
)
def test_scheme_labels_are_bounded(url: str, label: str) -> None:
    assert scheme_of(url) == label
