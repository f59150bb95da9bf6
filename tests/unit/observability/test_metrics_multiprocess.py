"""Metrics across processes: what `tesk serve`'s processes record adds up in one scrape.

Each process runs in a subprocess, as prometheus_client picks multiprocess mode at import.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tesk.observability.multiproc import ENV_MULTIPROC_DIR, prepare_multiprocess_dir

ROOT = Path(__file__).resolve().parents[3]

RECORD = """
from tesk.observability.prometheus import PrometheusRecorder
from tesk.observability.recording import TaskEnded
r = PrometheusRecorder()
for _ in range({created}):
    r.task_created()
r.task_ended(TaskEnded(state="COMPLETE", run_s=3.0, exit_codes=(0,)))
r.request_handled("CreateTask", "POST", 200, 0.01)
"""

SCRAPE = """
from tesk.observability.prometheus import exposition
from tests.fakes.memory_store import MemoryStore
print(exposition(None, MemoryStore(), "1.2.3").decode())
"""


def python(code: str, directory: Path | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != ENV_MULTIPROC_DIR}
    if directory is not None:
        env[ENV_MULTIPROC_DIR] = str(directory)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def test_values_of_several_processes_add_up(tmp_path: Path) -> None:
    for created in (2, 3):
        done = python(RECORD.format(created=created), tmp_path)
        assert done.returncode == 0, done.stderr
    scraped = python(SCRAPE, tmp_path)
    assert scraped.returncode == 0, scraped.stderr
    found = samples(scraped.stdout)
    assert found[("tesk_tasks_created_total", frozenset())] == 5
    assert found[("tesk_tasks_finished_total", frozenset({("state", "COMPLETE")}))] == 2
    assert found[("tesk_task_duration_seconds_sum", frozenset({("state", "COMPLETE")}))] == 6
    request = frozenset({("operation", "CreateTask"), ("method", "POST"), ("status", "200")})
    assert found[("tesk_http_request_duration_seconds_count", request)] == 2
    assert found[("tesk_tasks", frozenset({("state", "QUEUED")}))] == 0
    assert len(list(tmp_path.glob("*.db"))) == 4  # counter and histogram files of 2 processes


def test_the_directory_must_be_set_before_prometheus_is_imported(tmp_path: Path) -> None:
    code = f"""
    import os
    from tesk.observability.prometheus import PrometheusRecorder
    os.environ["{ENV_MULTIPROC_DIR}"] = {str(tmp_path)!r}
    try:
        PrometheusRecorder()
    except RuntimeError as exc:
        print(exc)
    """
    done = python(code, None)
    assert done.returncode == 0, done.stderr
    assert "was set after prometheus_client was imported" in done.stdout


def test_the_serving_process_gets_a_fresh_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_MULTIPROC_DIR, raising=False)
    base = tmp_path / "metrics"
    stale = base / "999999999"  # far above any pid_max: no such process
    stale.mkdir(parents=True)
    (stale / "counter_999999999.db").write_bytes(b"x")
    living = base / "1"  # init runs as long as the machine does
    living.mkdir()
    mine = base / "4242"
    mine.mkdir()
    (mine / "old.db").write_bytes(b"x")

    path = prepare_multiprocess_dir(tmp_path, pid=4242)

    assert path == mine
    assert os.environ[ENV_MULTIPROC_DIR] == str(mine)
    assert list(mine.iterdir()) == []
    assert not stale.exists()
    assert living.exists()
