"""`tesk serve --backend kubernetes` on loopback, driven by py-tes, tasks on the test cluster."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import tes
import yaml

from tests.k8s.backend_env import EXECUTOR_SA, TASKMASTER_SA
from tests.k8s.realcluster import EXECUTOR_IMAGE, TESK_IMAGE, TestCluster

TESK = Path(sys.executable).with_name("tesk")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def served(cluster: TestCluster, tmp_path: Path) -> Iterator[tuple[str, TestCluster]]:
    overlay = tmp_path / "kubernetes.yaml"
    overlay.write_text(
        yaml.safe_dump(
            {
                "custom": {
                    "kubernetes": {
                        "namespace": cluster.namespace,
                        "kubeconfig": cluster.kubeconfig_path,
                        "taskmaster_service_account": TASKMASTER_SA,
                        "executor_service_account": EXECUTOR_SA,
                        "image": TESK_IMAGE,
                    }
                }
            }
        )
    )
    port = free_port()
    log = tmp_path / "serve.log"
    process = subprocess.Popen(
        [
            str(TESK),
            "serve",
            "--backend",
            "kubernetes",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "data"),
            "--config",
            str(overlay),
        ],
        env={**os.environ, "TESK_CONFIG": ""},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while "TES v1.1.0" not in log.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("tesk serve did not start:\n" + log.read_text())
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}", cluster
    finally:
        process.terminate()
        process.wait(30)


def test_py_tes_runs_a_task_through_tesk_serve(served: tuple[str, TestCluster]) -> None:
    url, _cluster = served
    client = tes.HTTPClient(url, timeout=10)
    info = requests.get(f"{url}/ga4gh/tes/v1/service-info", timeout=10).json()
    assert "gpu_count" in info["tesResources_backend_parameters"]
    task_id = client.create_task(
        tes.Task(
            executors=[
                tes.Executor(image=EXECUTOR_IMAGE, command=["sh", "-c", "echo served; echo e >&2"]),
                tes.Executor(image=EXECUTOR_IMAGE, command=["sh", "-c", "exit 2"]),
            ]
        )
    )
    deadline = time.monotonic() + 60
    task = client.get_task(task_id, view="FULL")
    while task.state not in ("COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED"):
        assert time.monotonic() < deadline, task
        time.sleep(0.2)
        task = client.get_task(task_id, view="FULL")
    assert task.state == "EXECUTOR_ERROR", task.logs
    logs = task.logs[0].logs
    assert [(log.exit_code, log.stdout, log.stderr) for log in logs] == [
        (0, "served\n", "e\n"),
        (2, "", ""),
    ]


def test_a_task_s_events_follow_it_to_complete_through_the_api(
    served: tuple[str, TestCluster],
) -> None:
    url, _cluster = served
    client = tes.HTTPClient(url, timeout=10)
    task_id = client.create_task(
        tes.Task(executors=[tes.Executor(image=EXECUTOR_IMAGE, command=["sh", "-c", "echo hi"])])
    )
    events: list[tuple[int, str, dict[str, object]]] = []
    with requests.get(
        f"{url}/ga4gh/tes/v1/tasks/{task_id}/events", stream=True, timeout=120
    ) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        fields: dict[str, str] = {}
        for line in response.iter_lines(decode_unicode=True):
            if line == "" and "data" in fields:
                events.append((int(fields["id"]), fields["event"], json.loads(fields["data"])))
                fields = {}
            elif line and not line.startswith(":"):
                key, _, value = line.partition(": ")
                fields[key] = value

    what = [
        (name, data.get("state") if name == "state" else data.get("phase"))
        for _, name, data in events
    ]
    assert what[0] == ("state", "QUEUED")
    assert what[-1] == ("state", "COMPLETE")
    assert what.index(("executor", "started")) < what.index(("executor", "ended"))
    assert [event_id for event_id, _, _ in events] == sorted(event_id for event_id, _, _ in events)
    ended = next(
        data for _, name, data in events if name == "executor" and data["phase"] == "ended"
    )
    assert ended["exit_code"] == 0
    assert client.get_task(task_id).state == "COMPLETE"
