"""The chart on a real cluster: install, reach the API, run a task, uninstall.

Skipped unless TESK_TEST_KUBECONFIG names a kubeconfig (docs/deployment.md, "Tests"). The cluster
must be able to run TESK_TEST_IMAGE (default tesk:<version>) and pull busybox; kubectl must be on
the PATH.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import tes

from tests.deployment.chart import CHART, REPO

pytestmark = pytest.mark.k8s_real

RELEASE = "tesk"
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


@pytest.fixture(scope="module")
def kubeconfig() -> Path:
    configured = os.environ.get("TESK_TEST_KUBECONFIG")
    if not configured:
        pytest.skip("TESK_TEST_KUBECONFIG is not set: no real cluster to install the chart into")
    path = Path(configured)
    if not path.is_file():
        pytest.fail(f"TESK_TEST_KUBECONFIG={configured} is not a file", pytrace=False)
    if shutil.which("kubectl") is None:
        pytest.fail(
            "the real-cluster tests need kubectl on the PATH (for port-forward)", pytrace=False
        )
    return path


@pytest.fixture(scope="module")
def namespace(helm: Path, kubeconfig: Path) -> Iterator[str]:
    """A fresh namespace with the chart installed and ready; removed afterwards."""
    name = f"tesk-test-{uuid.uuid4().hex[:8]}"
    repository, _, tag = os.environ.get("TESK_TEST_IMAGE", f"tesk:{VERSION}").rpartition(":")
    install = [
        str(helm), "install", RELEASE, str(CHART), "--kubeconfig", str(kubeconfig),
        "--namespace", name, "--create-namespace", "--wait", "--timeout", "5m",
        "--set", f"image.repository={repository}", "--set", f"image.tag={tag}",
        "--set", "persistence.size=256Mi", "--set-json", "tasks.defaultDiskGb=0.25",
    ]  # fmt: skip
    done = subprocess.run(install, capture_output=True, text=True, check=False)
    try:
        assert done.returncode == 0, f"helm install failed:\n{done.stdout}\n{done.stderr}"
        yield name
    finally:
        subprocess.run(
            [str(helm), "uninstall", RELEASE, "--kubeconfig", str(kubeconfig), "-n", name],
            capture_output=True,
            check=False,
        )
        subprocess.run(
            [
                "kubectl",
                "--kubeconfig",
                str(kubeconfig),
                "delete",
                "namespace",
                name,
                "--wait=false",
            ],
            capture_output=True,
            check=False,
        )


@pytest.fixture(scope="module")
def tes_url(kubeconfig: Path, namespace: str) -> Iterator[str]:
    """The API through `kubectl port-forward` on a free loopback port."""
    forward = subprocess.Popen(
        [
            *("kubectl", "--kubeconfig", str(kubeconfig), "-n", namespace),
            *("port-forward", f"svc/{RELEASE}", "--address", "127.0.0.1", ":80"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert forward.stdout is not None
        first_line = forward.stdout.readline()
        match = re.search(r"127\.0\.0\.1:(\d+)", first_line)
        assert match, f"kubectl port-forward said: {first_line!r}"
        yield f"http://127.0.0.1:{match.group(1)}"
    finally:
        forward.terminate()
        forward.wait(timeout=10)


def test_health_endpoints_and_service_info(tes_url: str) -> None:
    assert requests.get(f"{tes_url}/healthz", timeout=10).status_code == 200
    assert requests.get(f"{tes_url}/readyz", timeout=10).status_code == 200
    info = tes.HTTPClient(tes_url).get_service_info()
    assert info.type.artifact == "tes"


def test_a_task_runs_to_completion_on_the_cluster(tes_url: str) -> None:
    client = tes.HTTPClient(tes_url, timeout=30)
    task_id = client.create_task(
        tes.Task(
            name="chart smoke test",
            executors=[tes.Executor(image="busybox:1.36", command=["echo", "hello from TESK"])],
        )
    )
    client.wait(task_id, timeout=600)
    task = client.get_task(task_id, view="FULL")
    assert task.state == "COMPLETE", task.logs
    assert task.logs is not None
    assert task.logs[-1].logs is not None
    assert "hello from TESK" in (task.logs[-1].logs[0].stdout or "")
