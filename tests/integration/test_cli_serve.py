"""The `tesk` client against a real `tesk serve` on 127.0.0.1: SQLite store, local backend, bwrap
runtime, the filer on a file root. Also what that server measures (/metrics, summed over its
processes) and logs (JSON lines, no secrets).

One server serves the whole module; every test makes its own tasks and compares metrics before
and after.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner, Result
from prometheus_client.parser import text_string_to_metric_families

from tesk.cli import main
from tests.integration.live_server import LiveServer, live_server

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bwrap not installed")

TESK = Path(sys.executable).with_name("tesk")
DEADLINE_S = 60.0


@dataclass
class Server:
    live: LiveServer

    @property
    def url(self) -> str:
        return self.live.url

    @property
    def files(self) -> Path:
        return self.live.files

    @property
    def log(self) -> Path:
        return self.live.log

    def tesk(self, *args: str, input: str | None = None) -> Result:
        env = {"TESK_URL": self.url, "TESK_TOKEN": "", "TESK_USER": "", "TESK_PASSWORD": ""}
        return CliRunner().invoke(main, list(args), input=input, env=env)

    def created(self, *args: str, input: str | None = None) -> str:
        result = self.tesk(*args, input=input)
        assert result.exit_code == 0, result.output
        task_id = result.stdout.strip()
        assert result.stdout == task_id + "\n"
        return task_id

    def state(self, task_id: str) -> str:
        response = requests.get(f"{self.url}/ga4gh/tes/v1/tasks/{task_id}", timeout=10)
        state: str = response.json()["state"]
        return state

    def metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        text = requests.get(f"{self.url}/metrics", timeout=10).text
        found = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                found[(sample.name, frozenset(sample.labels.items()))] = sample.value
        return found


def metric(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("tesk-cli")
    overlay = root / "overlay.yaml"
    # A transfer that cannot succeed (test_the_server_logs_...) should not be retried for long.
    overlay.write_text("custom: {filer: {retry: {attempts: 2, initial_backoff_s: 0.05}}}\n")
    with live_server(
        root,
        "--workers",
        "2",
        "--config",
        str(overlay),
        env={"TESK_LOG_FORMAT": "json"},
        runtime="bwrap",
    ) as live:
        yield Server(live)


def test_run_wait_get_and_list(server: Server) -> None:
    before = server.metrics()
    task_id = server.created("run", "--name", "cli-hello", "alpine", "--", "echo", "hello TESK")
    waited = server.tesk("wait", "--interval", "0.2", task_id)
    assert waited.exit_code == 0, waited.output
    assert waited.stdout.splitlines()[-1] == f"{task_id} COMPLETE (executors done: 1/1)"

    task = json.loads(server.tesk("get", task_id).stdout)
    assert task["state"] == "COMPLETE"
    assert task["logs"][0]["logs"][0]["stdout"] == "hello TESK\n"
    assert task["logs"][0]["logs"][0]["exit_code"] == 0

    listed = server.tesk("list", "--all", "--page-size", "1", "--name-prefix", "cli-hello")
    assert [line.split("\t")[:3] for line in listed.stdout.splitlines()] == [
        [task_id, "COMPLETE", "cli-hello"]
    ]
    complete = server.tesk("list", "--state", "COMPLETE", "--json", "--all")
    assert task_id in {t["id"] for t in json.loads(complete.stdout)["tasks"]}

    after = server.metrics()
    grown = {
        name: metric(after, name, **labels) - metric(before, name, **labels)
        for name, labels in [
            ("tesk_tasks_created_total", {}),
            ("tesk_tasks_finished_total", {"state": "COMPLETE"}),
            ("tesk_task_duration_seconds_count", {"state": "COMPLETE"}),
            ("tesk_task_queue_wait_seconds_count", {}),
            ("tesk_owner_tasks_started_total", {"owner": ""}),
            ("tesk_executor_exits_total", {"exit_code": "0"}),
        ]
    }
    # Created in an API worker, finished in the serving process: one scrape sees both.
    assert grown == {
        "tesk_tasks_created_total": 1,
        "tesk_tasks_finished_total": 1,
        "tesk_task_duration_seconds_count": 1,
        "tesk_task_queue_wait_seconds_count": 1,
        "tesk_owner_tasks_started_total": 1,
        "tesk_executor_exits_total": 1,
    }
    # The owner's sums are those of the histograms (no authentication: one owner, "").
    for owner_sum, histogram_sum, labels in [
        ("tesk_owner_queue_wait_seconds_total", "tesk_task_queue_wait_seconds_sum", {}),
        ("tesk_owner_run_seconds_total", "tesk_task_duration_seconds_sum", {"state": "COMPLETE"}),
    ]:
        grew = metric(after, owner_sum, owner="") - metric(before, owner_sum, owner="")
        expected = metric(after, histogram_sum, **labels) - metric(before, histogram_sum, **labels)
        assert grew == pytest.approx(expected), owner_sum
        assert grew > 0, owner_sum
    requests_made = metric(
        after,
        "tesk_http_request_duration_seconds_count",
        operation="CreateTask",
        method="POST",
        status="200",
    )
    assert requests_made >= 1


def test_a_failing_command_exits_3_through_the_real_binary(server: Server) -> None:
    before = server.metrics()
    env = {**os.environ, "TESK_URL": server.url}
    run = subprocess.run(
        [str(TESK), "run", "--wait", "--interval", "0.2", "alpine", "--", "sh", "-c", "exit 3"],
        env=env,
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
    )
    assert run.returncode == 3, run.stderr
    task_id = run.stdout.strip()
    assert run.stdout == task_id + "\n"
    assert f"{task_id} EXECUTOR_ERROR" in run.stderr
    assert "executor 0 exited with code 3" in run.stderr
    after = server.metrics()
    exits = "tesk_executor_exits_total"
    assert metric(after, exits, exit_code="3") - metric(before, exits, exit_code="3") == 1


def test_files_in_and_out_through_the_filer(server: Server, tmp_path: Path) -> None:
    before = server.metrics()
    (server.files / "in.txt").write_text("some data\n")
    local = tmp_path / "inline.txt"
    local.write_text("inline text\n")
    out = server.files / "out"
    task = {
        "name": "cli-files",
        "inputs": [
            {"path": "/data/in.txt", "url": (server.files / "in.txt").as_uri()},
            {"path": "/data/inline.txt", "content": "inline text\n"},
        ],
        "outputs": [
            {"path": "/data/out/*.txt", "path_prefix": "/data/out/", "url": out.as_uri() + "/"}
        ],
        "executors": [
            {
                "image": "alpine",
                "command": [
                    "sh",
                    "-c",
                    "mkdir -p /data/out && tr a-z A-Z < /data/in.txt > /data/out/upper.txt"
                    " && cp /data/inline.txt /data/out/inline.txt",
                ],
            }
        ],
    }
    task_id = server.created("submit", "-", input=json.dumps(task))
    assert server.tesk("wait", "--interval", "0.2", task_id).exit_code == 0
    assert (out / "upper.txt").read_text() == "SOME DATA\n"
    assert (out / "inline.txt").read_text() == "inline text\n"

    # `tesk get --usage` shows what the attempt used, from its metadata.
    metadata = json.loads(server.tesk("get", task_id).stdout)["logs"][0]["metadata"]
    shown = server.tesk("get", task_id, "--usage")
    assert shown.exit_code == 0, shown.output
    lines = [" ".join(line.split()) for line in shown.stdout.splitlines()]
    assert lines[0] == "usage:"
    assert f"wall {metadata['usage.wall_seconds']} s" in lines
    assert f"queued {metadata['usage.queued_seconds']} s" in lines
    assert "staged in 2 files, 22 B" in lines  # 10 bytes from the file root, 12 inline
    assert "staged out 2 files, 22 B" in lines
    # bwrap measures the executor's processes.
    assert f"cpu {metadata['usage.cpu_seconds']} s" in lines
    peak = int(metadata["usage.executor.0.peak_memory_bytes"])
    assert any(
        line.startswith("executor 0 cpu ") and f"({peak} bytes)" in line for line in lines
    ), lines

    after = server.metrics()

    def grew(name: str, **labels: str) -> float:
        return metric(after, name, **labels) - metric(before, name, **labels)

    assert grew("tesk_filer_files_total", direction="inputs", scheme="file") == 1
    assert grew("tesk_filer_bytes_total", direction="inputs", scheme="file") == 10
    assert grew("tesk_filer_bytes_total", direction="inputs", scheme="content") == 12
    assert grew("tesk_filer_files_total", direction="outputs", scheme="file") == 2
    assert grew("tesk_filer_bytes_total", direction="outputs", scheme="file") == 22


def test_cancel_a_running_task_and_a_timeout(server: Server) -> None:
    task_id = server.created("run", "alpine", "--", "sleep", "60")
    deadline = time.monotonic() + DEADLINE_S
    while server.state(task_id) != "RUNNING":
        assert time.monotonic() < deadline, server.state(task_id)
        time.sleep(0.1)
    assert metric(server.metrics(), "tesk_tasks", state="RUNNING") >= 1

    timed_out = server.tesk("wait", "--interval", "0.1", "--timeout", "0.3", task_id)
    assert timed_out.exit_code == 7, timed_out.output
    assert timed_out.stdout.splitlines()[-1] == f"{task_id} RUNNING: timed out"

    cancelled = server.tesk("cancel", task_id)
    assert cancelled.exit_code == 0, cancelled.output
    assert cancelled.stdout == task_id + "\n"
    waited = server.tesk("wait", "--interval", "0.2", task_id)
    assert waited.exit_code == 5, waited.output


def test_service_info_and_errors(server: Server) -> None:
    info = server.tesk("service-info")
    assert server.files.as_uri() in json.loads(info.stdout)["storage"]
    missing = server.tesk("get", "no-such-task")
    assert missing.exit_code == 1
    assert missing.stderr == "Error: 404 Not Found: task 'no-such-task' not found\n"
    refused = server.tesk("run", "-o", "/data/x=file:///etc/passwd", "alpine", "true")
    assert refused.exit_code == 1
    assert refused.stderr.startswith("Error: 400 Bad Request: outputs[0].url")


def test_the_server_logs_json_lines_without_secrets(server: Server) -> None:
    secret_url = "https://alice:hunter2@127.0.0.1:9/data.txt"
    response = requests.post(
        f"{server.url}/ga4gh/tes/v1/tasks",
        json={
            "name": "cli-secret",
            "inputs": [{"path": "/data/in", "url": secret_url}],
            "executors": [{"image": "alpine", "command": ["true"]}],
        },
        headers={"Authorization": "Bearer sekrit-token-4711"},
        timeout=10,
    )
    assert response.status_code == 200
    task_id = response.json()["id"]
    assert server.tesk("wait", "--interval", "0.2", task_id).exit_code == 4  # nothing on :9

    # The log file holds standard output too: the start-up banner is the one line not JSON.
    lines = [line for line in server.log.read_text().splitlines() if not line.startswith("TESK ")]
    documents = [json.loads(line) for line in lines if line.startswith("{")]
    assert len(documents) == len(lines), [line for line in lines if not line.startswith("{")]
    mine = [d for d in documents if d.get("task_id") == task_id]
    created = [d for d in mine if d.get("operation") == "CreateTask"]
    assert {"method": "POST", "path": "/ga4gh/tes/v1/tasks", "status": 200}.items() <= (
        created[0].items()
    )
    changes = [(d["from_state"], d["to_state"]) for d in mine if "to_state" in d]
    assert changes[0] == (None, "QUEUED")
    assert changes[-1][1] == "SYSTEM_ERROR"
    text = server.log.read_text()
    assert "hunter2" not in text
    assert "sekrit-token-4711" not in text
