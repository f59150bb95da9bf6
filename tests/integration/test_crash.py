"""`tesk serve` killed with SIGKILL (its whole process group) while tasks run, then restarted.

Every task must end in a defined state: those that were running lost their capacity (without
attempts left they end PREEMPTED with the reason; with attempts left they run again as a new
attempt, with a TaskLog each), those still queued run to the end; none stays RUNNING, and no
sandbox, container or task directory of the dead server is left behind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from benchmarks.served import ServedTesk, can_serve

pytestmark = [
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bwrap not installed"),
    pytest.mark.skipif(not can_serve(), reason="tesk serve needs the filer"),
]

PODMAN_IMAGE = os.environ.get("TESK_TEST_PODMAN_IMAGE")
LONG = "sleep 321"  # an executor that outlives the server; found in the process table by it
TERMINAL = {"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED", "PREEMPTED"}


@pytest.fixture
def data_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="tesk-crash-", dir="/var/tmp"))
    root.chmod(0o711)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def post(server: ServedTesk, script: str, image: str = "busybox") -> str:
    body = {"name": script, "executors": [{"image": image, "command": ["sh", "-c", script]}]}
    response = requests.post(f"{server.url}/tasks", json=body, timeout=30)
    assert response.status_code == 200, response.text
    task_id: str = response.json()["id"]
    return task_id


def task(server: ServedTesk, task_id: str) -> dict[str, Any]:
    response = requests.get(f"{server.url}/tasks/{task_id}?view=FULL", timeout=30)
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def sandboxes(marker: str) -> list[int]:
    """Processes whose command line holds `marker` (an executor's script)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def crash_and_recover(data_root: Path, runtime: str, image: str) -> None:
    custom = {"local": {"max_concurrent_tasks": 2}, "retries": {"max_attempts": 1}}
    server = ServedTesk(data_root / "data", custom=custom, runtime=runtime).start()
    try:
        running = [post(server, LONG, image), post(server, LONG, image)]
        wait_for(
            lambda: all(task(server, t)["state"] == "RUNNING" for t in running),
            60,
            "two RUNNING tasks",
        )
        queued = [post(server, f"echo queued-{i}", image) for i in range(3)]
        assert all(task(server, t)["state"] == "QUEUED" for t in queued)
        if runtime == "bwrap":
            assert sandboxes(LONG)
    finally:
        server.kill()

    restarted = ServedTesk(data_root / "data", custom=custom, runtime=runtime).start()
    try:
        wait_for(
            lambda: all(task(restarted, t)["state"] in TERMINAL for t in running + queued),
            120,
            "every task to finish",
        )
        for task_id in running:
            document = task(restarted, task_id)
            assert document["state"] == "PREEMPTED"
            assert len(document["logs"]) == 1
            assert "TESK stopped while the task was running" in document["logs"][0]["system_logs"]
        for index, task_id in enumerate(queued):
            document = task(restarted, task_id)
            assert document["state"] == "COMPLETE", document
            assert document["logs"][0]["logs"][0]["stdout"] == f"queued-{index}\n"
        listed = requests.get(f"{restarted.url}/tasks?state=RUNNING", timeout=30).json()
        assert listed["tasks"] == []
        wait_for(lambda: not sandboxes(LONG), 30, "no executor of the dead server")
        tasks_dir = data_root / "data" / "tasks"
        wait_for(
            lambda: not tasks_dir.exists() or not any(tasks_dir.iterdir()),
            30,
            "no task directory left",
        )
        if runtime == "podman":
            left = subprocess.run(
                ["podman", "ps", "--all", "--quiet", "--filter", "label=io.tesk.runner"],
                capture_output=True,
                text=True,
                check=True,
            )
            assert left.stdout.split() == []
    finally:
        restarted.stop()


def test_kill_9_while_tasks_run_then_restart(data_root: Path) -> None:
    crash_and_recover(data_root, "bwrap", "busybox")


@pytest.mark.podman
@pytest.mark.skipif(PODMAN_IMAGE is None, reason="TESK_TEST_PODMAN_IMAGE not set")
def test_kill_9_with_podman_leaves_no_container(data_root: Path) -> None:
    crash_and_recover(data_root, "podman", PODMAN_IMAGE or "")


def test_a_task_whose_server_was_killed_runs_again_as_a_new_attempt(data_root: Path) -> None:
    # The executor waits for a gate outside the data dir (sandboxes see the host read-only): the
    # first attempt dies waiting with the server; the second, run after the restart, gets through.
    gate = data_root / "gate"
    script = f"until [ -e {gate} ]; do sleep 0.05; done; echo through"
    server = ServedTesk(data_root / "data").start()
    try:
        task_id = post(server, script)
        wait_for(lambda: task(server, task_id)["state"] == "RUNNING", 60, "a RUNNING task")
        wait_for(lambda: sandboxes(str(gate)), 30, "its executor")
    finally:
        server.kill()
    gate.touch()

    restarted = ServedTesk(data_root / "data").start()
    try:
        wait_for(lambda: task(restarted, task_id)["state"] in TERMINAL, 120, "the task to end")
        document = task(restarted, task_id)
        basic = requests.get(f"{restarted.url}/tasks/{task_id}?view=BASIC", timeout=30).json()
        legacy = requests.get(
            f"{restarted.url.replace('/ga4gh/tes/v1', '/v1')}/tasks/{task_id}?view=FULL",
            timeout=30,
        )
    finally:
        restarted.stop()

    assert document["state"] == "COMPLETE", document
    first, second = document["logs"]
    assert first["system_logs"] == [
        "TESK stopped while the task was running",
        "attempt 1 lost its capacity (TESK stopped while the task was running); "
        "retried as attempt 2",
    ]
    assert first["logs"] == []  # the executor never ended
    assert second["logs"][0]["stdout"] == "through\n"
    # Each attempt has its own usage figures; the second was queued for longer.
    for log in (first, second):
        assert float(log["metadata"]["usage.wall_seconds"]) >= 0
    assert float(second["metadata"]["usage.queued_seconds"]) > float(
        first["metadata"]["usage.queued_seconds"]
    )
    assert len(basic["logs"]) == 2
    assert all("system_logs" not in log for log in basic["logs"])
    assert legacy.status_code == 200, legacy.text
    assert len(legacy.json()["logs"]) == 2


def test_an_unreachable_store_stops_start_up_with_a_message(data_root: Path) -> None:
    closed = ServedTesk(data_root / "x").port  # a free port nobody listens on
    url = f"postgresql://tesk:secret@127.0.0.1:{closed}/tesk"
    server = ServedTesk(data_root / "data", store_url=url)
    with pytest.raises(RuntimeError) as caught:
        server.start(timeout=60)
    message = str(caught.value)
    assert "exited with 2" in message
    assert f"127.0.0.1:{closed}" in message
    assert "secret" not in message
