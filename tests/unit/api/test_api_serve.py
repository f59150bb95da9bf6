"""`tesk serve`: flags, start-up errors, and the supervised gunicorn child on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from flask import Flask

from tesk import cli, server
from tesk.app import create_app
from tesk.config import CustomConfig
from tesk.settings import Overrides, load_settings
from tests.fakes.fake_backend import FakeBackend
from tests.fakes.memory_store import MemoryStore

ROOT = Path(__file__).resolve().parents[3]
TESK = Path(sys.executable).with_name("tesk")
DEADLINE_S = 60


def wsgi_for_tests() -> Flask:
    """The gunicorn app of these tests: the real API over a MemoryStore and a FakeBackend."""
    app: Flask = create_app(
        CustomConfig(), store=MemoryStore(), backend=FakeBackend(), check_url=lambda u, o: None
    ).app
    return app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- command line --------------------------------------------------------------------------------


def test_flags_become_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[tuple[Overrides, int]] = []
    monkeypatch.setattr(
        server, "serve", lambda overrides, workers: calls.append((overrides, workers)) or 0
    )
    overlay = tmp_path / "o.yaml"
    overlay.write_text("{}\n")
    args = [
        "serve",
        "--host", "0.0.0.0",
        "--port", "9000",
        "--data-dir", str(tmp_path),
        "--runtime", "bwrap",
        "--file-root", "/srv/a",
        "--file-root", "/srv/b",
        "--config", str(overlay),
        "--workers", "3",
    ]  # fmt: skip
    result = CliRunner().invoke(cli.main, args)
    assert result.exit_code == 0, result.output
    overrides, workers = calls[0]
    assert workers == 3
    assert overrides == Overrides(
        host="0.0.0.0",
        port=9000,
        data_dir=tmp_path,
        runtime="bwrap",
        file_roots=(Path("/srv/a"), Path("/srv/b")),
        config_files=(overlay,),
    )
    CliRunner().invoke(cli.main, ["serve"])
    assert calls[1] == (Overrides(), 2)


def test_the_child_gets_the_effective_settings(tmp_path: Path) -> None:
    overrides = Overrides(port=9100, data_dir=tmp_path, file_roots=(tmp_path,), runtime="bwrap")
    settings = load_settings(overrides, env={})
    env = server.child_env(settings)
    assert load_settings(env=env).custom == settings.custom
    assert env["TESK_PORT"] == "9100"
    assert "TESK_STARTED_AT" in env
    command = server.gunicorn_command(settings, 4)
    assert command[:3] == [sys.executable, "-m", "gunicorn"]
    assert command[command.index("--workers") + 1] == "4"
    # The threads that answer requests, and one per stream follower on top.
    assert command[command.index("--threads") + 1] == str(
        4 + settings.custom.streams.max_per_worker
    )
    bare = server.gunicorn_command(settings, 4, followers=False)
    assert bare[bare.index("--threads") + 1] == "4"
    assert command[command.index("--bind") + 1] == "127.0.0.1:9100"
    assert command[-1] == "tesk.app:wsgi()"


def run_tesk(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TESK), "serve", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=DEADLINE_S,
    )


@pytest.mark.parametrize(
    ("config", "env", "message"),
    [
        ("custom: {local: {runtim: bwrap}}\n", {}, "custom.local.runtim"),
        ("{}\n", {"TESK_PORT": "http"}, "TESK_PORT must be a port number"),
        ("{}\n", {"TESK_BACKEND": "slurm"}, "custom.backend"),
    ],
)
def test_startup_errors_are_one_line_and_exit_2(
    tmp_path: Path, config: str, env: dict[str, str], message: str
) -> None:
    overlay = tmp_path / "c.yaml"
    overlay.write_text(config)
    result = run_tesk("--config", str(overlay), "--data-dir", str(tmp_path), env=env)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("tesk serve:")]
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.stderr


def test_port_in_use_is_a_startup_error(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        result = run_tesk("--port", str(port), "--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert f"tesk serve: cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


# -- the supervised API process ------------------------------------------------------------------

SUPERVISED = """
import sys
from pathlib import Path

from tesk.server import supervisor_for
from tesk.settings import Overrides, load_settings
from tests.fakes.fake_backend import FakeBackend
from tests.fakes.memory_store import MemoryStore

marks = Path(sys.argv[2])


class MarkedBackend(FakeBackend):
    def start(self) -> None:
        if sys.argv[3:] == ["fail"]:
            raise RuntimeError("no container runtime found (tried docker, podman, bwrap)")
        with marks.open("a") as f:
            f.write("started\\n")

    def stop(self) -> None:
        with marks.open("a") as f:
            f.write("stopped\\n")


settings = load_settings(Overrides(port=int(sys.argv[1])), env={})
supervisor = supervisor_for(settings, 2, app="tests.unit.api.test_api_serve:wsgi_for_tests()")
sys.exit(supervisor.run(MarkedBackend(), MemoryStore()))
"""


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[dict[str, Any]]:
    port = free_port()
    marks = tmp_path / "marks"
    script = tmp_path / "supervised.py"
    script.write_text(SUPERVISED)
    process = subprocess.Popen(
        [sys.executable, str(script), str(port), str(marks)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base, process)
        yield {"process": process, "base": base, "marks": marks, "port": port}
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def wait_until_serving(base: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            if requests.get(f"{base}/healthz", timeout=10).status_code == 200:
                return
        except requests.RequestException:  # not listening yet, or no worker booted yet
            time.sleep(0.1)
    pytest.fail("the API did not come up")


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_serves_and_stops_cleanly_on_sigterm(supervised: dict[str, Any]) -> None:
    base, process = supervised["base"], supervised["process"]
    body = {"executors": [{"image": "alpine", "command": ["true"]}]}
    response = requests.post(f"{base}/ga4gh/tes/v1/tasks", json=body, timeout=10)
    assert response.status_code == 200
    assert set(response.json()) == {"id"}
    created = {
        requests.get(f"{base}/v1/service-info", timeout=10).json()["createdAt"] for _ in range(6)
    }
    assert len(created) == 1  # every worker reports the start time of `tesk serve`
    assert supervised["marks"].read_text() == "started\n"

    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=DEADLINE_S)
    assert process.returncode == 0, err
    assert f"TES v1.1.0 at {base}/ga4gh/tes/v1" in out
    assert supervised["marks"].read_text() == "started\nstopped\n"
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{base}/healthz", timeout=2)


def test_a_backend_that_cannot_start_is_a_startup_error(tmp_path: Path) -> None:
    port = free_port()
    script = tmp_path / "supervised.py"
    script.write_text(SUPERVISED)
    result = subprocess.run(
        [sys.executable, str(script), str(port), str(tmp_path / "marks"), "fail"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
    )
    assert result.returncode == 2
    assert "tesk serve: cannot start the backend: RuntimeError: no container runtime found" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr
    with socket.create_server(("127.0.0.1", port)):  # the API child is gone
        pass


def test_a_dead_api_process_stops_the_backend_too(supervised: dict[str, Any]) -> None:
    process = supervised["process"]
    (child,) = children_of(process.pid)
    for pid in [child, *children_of(child)]:  # the gunicorn master and its workers
        os.kill(pid, signal.SIGKILL)
    _out, err = process.communicate(timeout=DEADLINE_S)
    assert process.returncode == 1
    assert "the API server stopped unexpectedly" in err
    assert supervised["marks"].read_text() == "started\nstopped\n"
