"""End to end: py-tes against a live `tesk serve` with the local backend."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import requests
import tes

from tests.integration.live_server import LiveServer, processes_matching

IMAGE = "alpine"


def run(client: tes.HTTPClient, task: tes.Task, timeout: float = 60) -> tes.Task:
    task_id = client.create_task(task)
    client.wait(task_id, timeout=timeout)
    return client.get_task(task_id, view="FULL")


def test_task_runs_and_full_view_shows_exit_codes_and_stdout(client: tes.HTTPClient) -> None:
    task = run(
        client,
        tes.Task(
            name="hello",
            executors=[
                tes.Executor(image=IMAGE, command=["echo", "hello from tesk"]),
                tes.Executor(image=IMAGE, command=["sh", "-c", "echo oops >&2; exit 0"]),
            ],
        ),
    )
    assert task.state == "COMPLETE"
    log = task.logs[0]
    assert [e.exit_code for e in log.logs] == [0, 0]
    assert log.logs[0].stdout == "hello from tesk\n"
    assert log.logs[1].stderr == "oops\n"
    assert log.start_time is not None
    assert log.end_time is not None


def test_content_input_to_file_output(client: tes.HTTPClient, files: Path) -> None:
    out = files / f"out-{uuid.uuid4().hex}.txt"
    task = run(
        client,
        tes.Task(
            inputs=[tes.Input(path="/data/in.txt", content="abc\n")],
            outputs=[tes.Output(path="/data/out.txt", url=f"file://{out}")],
            executors=[
                tes.Executor(
                    image=IMAGE, command=["sh", "-c", "tr a-z A-Z < /data/in.txt > /data/out.txt"]
                )
            ],
        ),
    )
    assert task.state == "COMPLETE", task.logs
    assert out.read_text() == "ABC\n"
    assert task.logs[0].outputs[0].path == "/data/out.txt"
    assert task.logs[0].outputs[0].size_bytes == 4


def test_ignored_failure_continues_and_task_completes(client: tes.HTTPClient) -> None:
    task = run(
        client,
        tes.Task(
            executors=[
                tes.Executor(image=IMAGE, command=["sh", "-c", "exit 3"], ignore_error=True),
                tes.Executor(image=IMAGE, command=["echo", "after"]),
            ]
        ),
    )
    assert task.state == "COMPLETE"
    assert [e.exit_code for e in task.logs[0].logs] == [3, 0]


def test_unignored_failure_stops_the_task(client: tes.HTTPClient) -> None:
    task = run(
        client,
        tes.Task(
            executors=[
                tes.Executor(image=IMAGE, command=["sh", "-c", "exit 4"]),
                tes.Executor(image=IMAGE, command=["echo", "never"]),
            ]
        ),
    )
    assert task.state == "EXECUTOR_ERROR"
    assert [e.exit_code for e in task.logs[0].logs] == [4]


def test_cancel_of_a_running_task_leaves_nothing_behind(client: tes.HTTPClient) -> None:
    seconds = str(300 + uuid.uuid4().int % 600)  # a sleep nobody else runs
    task_id = client.create_task(
        tes.Task(executors=[tes.Executor(image=IMAGE, command=["sleep", seconds])])
    )
    deadline = time.monotonic() + 30
    while client.get_task(task_id).state != "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.1)
    while not processes_matching(f"sleep {seconds}") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_matching(f"sleep {seconds}"), "the executor never started"
    client.cancel_task(task_id)
    while client.get_task(task_id).state != "CANCELED" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert client.get_task(task_id).state == "CANCELED"
    assert processes_matching(f"sleep {seconds}") == []


def test_filters_and_paging_over_hundreds_of_tasks(server: LiveServer) -> None:
    marker = uuid.uuid4().hex[:8]
    created = []
    for i in range(300):
        body = {
            "name": f"page-{marker}-{i:03d}",
            "tags": {"batch": marker, "parity": "even" if i % 2 == 0 else "odd"},
            "executors": [{"image": IMAGE, "command": ["true"]}],
        }
        response = requests.post(f"{server.api}/tasks", json=body, timeout=10)
        assert response.status_code == 200, response.text
        created.append(response.json()["id"])

    seen: list[str] = []
    token = None
    while True:
        params: dict[str, str | int] = {"name_prefix": f"page-{marker}-", "page_size": 64}
        if token:
            params["page_token"] = token
        page = requests.get(f"{server.api}/tasks", params=params, timeout=10).json()
        seen += [t["id"] for t in page["tasks"]]
        token = page.get("next_page_token")
        if not token:
            break
    assert seen == list(reversed(created))  # newest first, nothing lost or repeated

    odd = requests.get(
        f"{server.api}/tasks",
        params={"tag_key": ["batch", "parity"], "tag_value": [marker, "odd"], "page_size": 2047},
        timeout=10,
    ).json()["tasks"]
    assert len(odd) == 150
    any_parity = requests.get(
        f"{server.api}/tasks",
        params={"tag_key": ["batch", "parity"], "tag_value": [marker], "page_size": 2047},
        timeout=10,
    ).json()["tasks"]
    assert len(any_parity) == 300


def test_tasks_survive_a_restart(tmp_path: Path) -> None:
    from tests.integration.live_server import live_server, start_server

    with live_server(tmp_path) as first:
        client = tes.HTTPClient(first.url, timeout=10)
        done = run(
            client, tes.Task(name="kept", executors=[tes.Executor(image=IMAGE, command=["true"])])
        )
        port = int(first.url.rsplit(":", 1)[1])
    second = start_server(tmp_path, port=port)
    try:
        again = tes.HTTPClient(second.url, timeout=10).get_task(done.id, view="FULL")
        assert again.state == "COMPLETE"
        assert again.name == "kept"
    finally:
        second.stop()
