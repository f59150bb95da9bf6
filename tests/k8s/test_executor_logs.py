"""Executor output through `tesk serve --backend kubernetes`: followed live from the pod log,
then the kept tail once the task's pods are gone."""

from __future__ import annotations

import time

import requests

from tests.k8s.realcluster import EXECUTOR_IMAGE, TestCluster
from tests.k8s.test_backend_serve import served  # noqa: F401 (a fixture)

LINES = "for i in 1 2 3 4 5; do echo line $i; sleep 1; done; echo oops >&2"
EXPECTED = b"".join(f"line {i}\n".encode() for i in range(1, 6))


def test_a_follower_gets_lines_before_the_pod_ends_then_the_tail(
    served: tuple[str, TestCluster],  # noqa: F811
) -> None:
    url, _cluster = served
    api = f"{url}/ga4gh/tes/v1"
    body = {"executors": [{"image": EXECUTOR_IMAGE, "command": ["sh", "-c", LINES]}]}
    task_id = requests.post(f"{api}/tasks", json=body, timeout=60).json()["id"]
    output = f"{api}/tasks/{task_id}/executors/0/stdout"

    events: list[str] = []
    received = b""
    with requests.get(output, params={"follow": "true"}, stream=True, timeout=(10, 300)) as got:
        assert got.status_code == 200, got.text
        for chunk in got.iter_content(chunk_size=None):
            if not received:
                state = requests.get(f"{api}/tasks/{task_id}", timeout=60).json()["state"]
                # A line's newline may come with the next chunk: it could begin the end marker.
                events.append(f"received {chunk[:6]!r}")
                events.append(f"task {state}")
            received += chunk
    assert events == ["received b'line 1'", "task RUNNING"]
    assert received == EXPECTED

    deadline = time.monotonic() + 120
    while requests.get(f"{api}/tasks/{task_id}", timeout=60).json()["state"] != "COMPLETE":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    # The task's pods are deleted when it ends: what is left is the tail its ExecutorLog kept.
    deadline = time.monotonic() + 60
    while True:
        kept = requests.get(output, timeout=60)
        if kept.headers["TESK-Log-Source"] == "tail" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert (kept.headers["TESK-Log-Source"], kept.content) == ("tail", EXPECTED)
    stderr = requests.get(f"{api}/tasks/{task_id}/executors/0/stderr", timeout=60)
    assert (stderr.headers["TESK-Log-Source"], stderr.content) == ("tail", b"oops\n")
