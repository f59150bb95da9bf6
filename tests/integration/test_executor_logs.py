"""Executors' output through a real `tesk serve` (local backend): live, followed, ranged, kept."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tesk.auth.users import User, hash_password, write_users
from tests.integration.live_server import TESK, LiveServer, live_server

LINES = "for i in 1 2 3 4 5; do echo line $i; sleep 1; done"
EXPECTED = b"".join(f"line {i}\n".encode() for i in range(1, 6))
TIMEOUT = 60


def create(server: LiveServer, *scripts: str, auth: Any = None) -> str:
    body = {
        "name": "logs",
        "executors": [{"image": "alpine", "command": ["sh", "-c", script]} for script in scripts],
    }
    response = requests.post(f"{server.api}/tasks", json=body, auth=auth, timeout=10)
    response.raise_for_status()
    task_id: str = response.json()["id"]
    return task_id


def state(server: LiveServer, task_id: str, auth: Any = None) -> str:
    response = requests.get(f"{server.api}/tasks/{task_id}", auth=auth, timeout=10)
    response.raise_for_status()
    found: str = response.json()["state"]
    return found


def wait_for(server: LiveServer, task_id: str, wanted: set[str], auth: Any = None) -> str:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        found = state(server, task_id, auth)
        if found in wanted:
            return found
        time.sleep(0.1)
    raise AssertionError(f"task {task_id} never reached {wanted}:\n{server.log_tail()}")


def output_url(server: LiveServer, task_id: str, stream: str = "stdout", index: int = 0) -> str:
    return f"{server.api}/tasks/{task_id}/executors/{index}/{stream}"


def wait_for_output(server: LiveServer, task_id: str, size: int, stream: str = "stdout") -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if len(requests.get(output_url(server, task_id, stream), timeout=10).content) >= size:
            return
        time.sleep(0.1)
    raise AssertionError(f"task {task_id} never wrote {size} bytes to {stream}")


def follow(url: str, auth: Any = None) -> requests.Response:
    response = requests.get(
        url, params={"follow": "true"}, stream=True, timeout=(10, TIMEOUT), auth=auth
    )
    assert response.status_code == 200, response.text
    return response


def lines_of(response: requests.Response) -> Iterator[bytes]:
    buffered = b""
    for chunk in response.iter_content(chunk_size=None):
        buffered += chunk
        while b"\n" in buffered:
            line, buffered = buffered.split(b"\n", 1)
            yield line + b"\n"
    if buffered:
        yield buffered


def test_a_follower_gets_lines_while_the_task_runs_and_all_of_them(server: LiveServer) -> None:
    task_id = create(server, LINES)
    events: list[str] = []
    with follow(output_url(server, task_id)) as response:
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert response.headers["TESK-Log-Source"] == "live"
        assert response.headers["Cache-Control"] == "no-cache"
        assert response.headers["X-Accel-Buffering"] == "no"
        received = b""
        for line in lines_of(response):
            if not received:
                events.append(f"received {line!r}")
                events.append(f"task {state(server, task_id)}")
            received += line
    assert events == ["received b'line 1\\n'", "task RUNNING"]
    assert received == EXPECTED
    assert wait_for(server, task_id, {"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR"}) == "COMPLETE"


def test_ranges_stderr_and_the_kept_tail(server: LiveServer) -> None:
    task_id = create(server, "echo 0123456789; echo oops >&2; sleep 60")
    wait_for_output(server, task_id, 11)
    url = output_url(server, task_id)

    whole = requests.get(url, timeout=10)
    assert (whole.status_code, whole.content) == (200, b"0123456789\n")
    assert whole.headers["Accept-Ranges"] == "bytes"
    assert whole.headers["TESK-Log-Source"] == "live"

    part = requests.get(url, headers={"Range": "bytes=2-5"}, timeout=10)
    assert (part.status_code, part.content) == (206, b"2345")
    assert part.headers["Content-Range"] == "bytes 2-5/11"
    assert requests.get(url, headers={"Range": "bytes=-3"}, timeout=10).content == b"89\n"
    assert requests.get(url, headers={"Range": "bytes=8-"}, timeout=10).content == b"89\n"
    beyond = requests.get(url, headers={"Range": "bytes=11-"}, timeout=10)
    assert beyond.status_code == 416
    assert beyond.headers["Content-Range"] == "bytes */11"
    assert requests.get(url, headers={"Range": "lines=1-2"}, timeout=10).status_code == 400

    wait_for_output(server, task_id, 5, "stderr")
    stderr = requests.get(output_url(server, task_id, "stderr"), timeout=10)
    assert (stderr.status_code, stderr.content) == (200, b"oops\n")

    requests.post(f"{server.api}/tasks/{task_id}:cancel", timeout=10).raise_for_status()
    wait_for(server, task_id, {"CANCELED"})
    task_id = create(server, "echo done; echo bad >&2")
    wait_for(server, task_id, {"COMPLETE"})
    kept = requests.get(output_url(server, task_id), timeout=10)
    assert (kept.status_code, kept.content) == (200, b"done\n")
    assert kept.headers["TESK-Log-Source"] == "tail"
    ranged = requests.get(output_url(server, task_id), headers={"Range": "bytes=1-"}, timeout=10)
    assert (ranged.status_code, ranged.content) == (206, b"one\n")
    # A follower of an ended executor gets the kept tail and its end at once.
    with follow(output_url(server, task_id, "stderr")) as response:
        assert response.headers["TESK-Log-Source"] == "tail"
        assert response.content == b"bad\n"


def test_unknown_tasks_and_executors_are_404_and_bad_values_400(server: LiveServer) -> None:
    task_id = create(server, "true")
    missing = requests.get(output_url(server, "no-such-task"), timeout=10)
    assert missing.status_code == 404
    assert "no-such-task" in missing.json()["detail"]
    beyond = requests.get(output_url(server, task_id, index=1), timeout=10)
    assert beyond.status_code == 404
    assert "there is no executor 1" in beyond.json()["detail"]
    for bad in (f"{server.api}/tasks/{task_id}/executors/first/stdout",):
        response = requests.get(bad, timeout=10)
        assert response.status_code == 400
        assert "not an executor index" in response.json()["detail"]
    response = requests.get(output_url(server, task_id), params={"follow": "maybe"}, timeout=10)
    assert response.status_code == 400
    assert "follow" in response.json()["detail"]


def test_fifty_followers_of_one_task_all_get_every_line(server: LiveServer) -> None:
    task_id = create(server, LINES)
    results: list[bytes] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def one() -> None:
        try:
            with follow(output_url(server, task_id)) as response:
                data = response.content
            with lock:
                results.append(data)
        except BaseException as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT * 2)
    assert not errors
    assert results == [EXPECTED] * 50


def test_tesk_logs_follows_through_the_cli(server: LiveServer) -> None:
    task_id = create(server, LINES, "echo second >&2; exit 3")
    env = {**os.environ, "TESK_URL": server.url}
    followed = subprocess.run(
        [TESK, "logs", "-f", task_id], env=env, capture_output=True, timeout=TIMEOUT * 2
    )
    assert (followed.returncode, followed.stdout) == (0, EXPECTED), followed.stderr
    wait_for(server, task_id, {"EXECUTOR_ERROR"})
    second = subprocess.run(
        [TESK, "logs", "--stderr", "--executor", "1", task_id],
        env=env,
        capture_output=True,
        timeout=TIMEOUT,
    )
    assert (second.returncode, second.stdout) == (0, b"second\n"), second.stderr
    missing = subprocess.run(
        [TESK, "logs", "no-such-task"], env=env, capture_output=True, timeout=TIMEOUT
    )
    assert missing.returncode == 1
    assert missing.stdout == b""
    assert missing.stderr.decode().strip().splitlines() == [
        "Error: 404 Not Found: task 'no-such-task' not found"
    ]


@pytest.fixture(scope="module")
def basic_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("tesk-logs-basic")
    users = root / "users"
    write_users(
        users, [User("alice", hash_password("alice-pw")), User("bob", hash_password("bob-pw"))]
    )
    overlay = root / "auth.yaml"
    overlay.write_text(f"custom:\n  auth:\n    mode: basic\n    users_file: {users}\n")
    with live_server(root, "--config", str(overlay)) as running:
        yield running


def test_only_the_owner_sees_the_output(basic_server: LiveServer) -> None:
    alice, bob = ("alice", "alice-pw"), ("bob", "bob-pw")
    task_id = create(basic_server, "echo secret", auth=alice)
    wait_for(basic_server, task_id, {"COMPLETE"}, auth=alice)
    url = output_url(basic_server, task_id)
    assert requests.get(url, auth=alice, timeout=10).content == b"secret\n"
    other = requests.get(url, auth=bob, timeout=10)
    assert other.status_code == 404
    assert other.json()["detail"] == f"task {task_id!r} not found"
    assert requests.get(url, params={"follow": "true"}, auth=bob, timeout=10).status_code == 404
    assert requests.get(url, timeout=10).status_code == 401
    env = {**os.environ, "TESK_URL": basic_server.url, "TESK_USER": "bob"}
    env["TESK_PASSWORD"] = "bob-pw"
    refused = subprocess.run([TESK, "logs", task_id], env=env, capture_output=True, timeout=TIMEOUT)
    assert refused.returncode == 1
    assert "404 Not Found" in refused.stderr.decode()
