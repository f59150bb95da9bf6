"""py-tes 0.4.2 polls a real `tesk serve` for tasks in CANCELING and PREEMPTED.

Those are TES 1.1 states that py-tes 0.4 (pinned by the Snakemake and Toil plugins) cannot parse:
under /v1 TESK shows it RUNNING and SYSTEM_ERROR instead (docs/api.md, "Older clients"). The tasks
are written into the server's SQLite store directly, held by a runner of another process, so that
no runner of this server moves them on while the client polls.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from tesk.store.base import TaskRecord
from tesk.store.sql import SqlStore
from tesk.tes.models import Task, timestamp
from tesk.tes.progress import Progress
from tesk.tes.states import State
from tests.integration.live_server import LiveServer, live_server

ROOT = Path(__file__).resolve().parents[2]
PYTES04 = ROOT / ".cache" / "pytes04"
ELSEWHERE = "runner-of-another-process"

OLD_CLIENT = """
import json, sys
import tes
from tes.utils import TimeoutError as WaitTimeout

assert tes.__version__ == "0.4.2", tes.__version__
url, mode, ids = sys.argv[1], sys.argv[2], sys.argv[3:]
client = tes.HTTPClient(url)
out = {}
if mode == "poll":
    views = ("MINIMAL", "BASIC", "FULL")
    for task_id in ids:
        out[task_id] = {view: client.get_task(task_id, view).state for view in views}
    for view in views:
        seen, token = [], None
        while True:
            page = client.list_tasks(view=view, page_size=1, page_token=token)
            seen += [[t.id, t.state] for t in page.tasks]
            token = page.next_page_token
            if not token:
                break
        out["list:" + view] = seen
    try:
        client.wait(ids[0], timeout=1)
        out["wait"] = "returned"
    except WaitTimeout as exc:
        out["wait"] = "still waiting: " + str(exc)
else:
    out["wait"] = {task_id: client.wait(task_id, timeout=30).state for task_id in ids}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def pytes04() -> Path:
    """py-tes 0.4.2 in its own directory, from scripts/test-setup.sh (tests stay offline)."""
    if not (PYTES04 / "tes" / "__init__.py").is_file():
        pytest.fail(f"py-tes 0.4.2 is not in {PYTES04}: run scripts/test-setup.sh first")
    return PYTES04


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[LiveServer, SqlStore]]:
    store_url = f"sqlite:///{tmp_path}/tasks.db"
    with live_server(tmp_path, "--store-url", store_url) as server:
        store = SqlStore(store_url)
        try:
            yield server, store
        finally:
            store.close()


def stored_task(store: SqlStore, state: State, name: str) -> str:
    task_id = str(uuid.uuid4())
    created_us = time.time_ns() // 1000
    created = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=created_us)
    task = Task.model_validate(
        {
            "id": task_id,
            "name": name,
            "executors": [{"image": "alpine", "command": ["sleep", "600"]}],
            "creation_time": timestamp(created),
        }
    )
    record = TaskRecord(id=task_id, state=State.QUEUED, created_us=created_us, task=task, name=name)
    store.create(record)
    for step in (State.INITIALIZING, State.RUNNING, state):
        progress = Progress(state=step, system_logs=(f"now {step}",))
        assert store.update(task_id, progress, worker=ELSEWHERE)
    return task_id


def run_old_client(pytes04: Path, url: str, mode: str, *ids: str) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-c", OLD_CLIENT, url, mode, *ids],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(pytes04)},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    found: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


def test_py_tes_0_4_polls_canceling_and_preempted_tasks(
    served: tuple[LiveServer, SqlStore], pytes04: Path
) -> None:
    server, store = served
    canceling = stored_task(store, State.CANCELING, "being-cancelled")
    preempted = stored_task(store, State.PREEMPTED, "lost-its-node")

    out = run_old_client(pytes04, server.url, "poll", canceling, preempted)

    every_view = ("MINIMAL", "BASIC", "FULL")
    assert out[canceling] == dict.fromkeys(every_view, "RUNNING")
    assert out[preempted] == dict.fromkeys(every_view, "SYSTEM_ERROR")
    for view in every_view:
        assert out[f"list:{view}"] == [[preempted, "SYSTEM_ERROR"], [canceling, "RUNNING"]]
    # A task on its way to CANCELED keeps the client waiting, as CANCELING keeps a TES 1.1 one.
    assert str(out["wait"]).startswith("still waiting: "), out["wait"]
    assert "'state': 'RUNNING'" in str(out["wait"])

    assert store.update(canceling, Progress(state=State.CANCELED), expected={State.CANCELING})
    assert run_old_client(pytes04, server.url, "wait", canceling, preempted)["wait"] == {
        canceling: "CANCELED",
        preempted: "SYSTEM_ERROR",
    }


def test_the_state_filter_under_v1_matches_what_v1_shows(
    served: tuple[LiveServer, SqlStore],
) -> None:
    server, store = served
    preempted = [stored_task(store, State.PREEMPTED, f"p{n}") for n in range(3)]
    failed = stored_task(store, State.SYSTEM_ERROR, "failed")
    canceling = stored_task(store, State.CANCELING, "c")
    newest_first = [*preempted, failed][::-1]

    def listed(base: str, state: str) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        params: dict[str, str | int] = {"state": state, "page_size": 2}
        while True:
            response = requests.get(f"{server.url}{base}/tasks", params=params, timeout=10)
            assert response.status_code == 200, response.text
            page = response.json()
            found += [(task["id"], task["state"]) for task in page["tasks"]]
            if "next_page_token" not in page:
                return found
            params["page_token"] = page["next_page_token"]

    assert listed("/v1", "SYSTEM_ERROR") == [(t, "SYSTEM_ERROR") for t in newest_first]
    assert listed("/v1", "RUNNING") == [(canceling, "RUNNING")]
    assert listed("/v1", "PREEMPTED") == []
    assert listed("/ga4gh/tes/v1", "SYSTEM_ERROR") == [(failed, "SYSTEM_ERROR")]
    assert listed("/ga4gh/tes/v1", "PREEMPTED") == [(t, "PREEMPTED") for t in preempted[::-1]]
    assert listed("/ga4gh/tes/v1", "CANCELING") == [(canceling, "CANCELING")]
