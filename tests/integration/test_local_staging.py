"""The local runtime's filer stages with the real filer: what a cancel does to a running stage."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tesk.backends.local.bwrap import BwrapLauncher
from tesk.backends.local.layout import DataDir
from tesk.backends.local.runtime import LocalRuntime
from tesk.config import FilerConfig, RetryConfig
from tesk.filer import Filer, StageError
from tesk.tes.models import Task


class GatedServer:
    """Serves any path; `/slow` answers only once the gate opens. Records what was asked for."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.asked: list[str] = []
        self.slow_asked = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.answer(self.path.encode())

            def do_PUT(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.answer(b"")

            def answer(self, body: bytes) -> None:
                server.asked.append(f"{self.command} {self.path}")
                if self.path == "/slow":
                    server.slow_asked.set()
                    server.gate.wait(30)
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"
        threading.Thread(target=self._http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.gate.set()
        self._http.shutdown()
        self._http.server_close()


@pytest.fixture
def server() -> Iterator[GatedServer]:
    gated = GatedServer()
    yield gated
    gated.close()


def stage_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.endswith(" staging")]


def cancel_while_slow_is_served(
    server: GatedServer,
    tmp_path: Path,
    task: Task,
    stage: Callable[[LocalRuntime], object],
    *,
    clean_up: bool = True,
) -> LocalRuntime:
    """Start the stage, cancel while `/slow` is served, clean up, then let `/slow` end.

    Without `clean_up`, the volume is left as the stage found it until the stage ends (a
    cleanup still under way), so only the stage itself can keep from sending more files.
    """
    filer = Filer(FilerConfig(retry=RetryConfig(attempts=1)))
    task_dir = DataDir(tmp_path / "data").task(task.id)
    runtime = LocalRuntime(task_dir, BwrapLauncher(), filer)
    runtime.prepare(task)
    for name in ("a", "b", "c"):
        (runtime.volume / "data" / "out" / name).parent.mkdir(parents=True, exist_ok=True)
        (runtime.volume / "data" / "out" / name).write_text(name)
    (runtime.volume / "data" / "slow").write_text("slow")
    errors: list[Exception] = []

    def run() -> None:
        try:
            stage(runtime)
        except StageError as exc:
            errors.append(exc)

    staging = threading.Thread(target=run)
    staging.start()
    assert server.slow_asked.wait(30)
    runtime.cancel()
    staging.join(30)
    assert len(errors) == 1
    assert "cancelled" in str(errors[0])
    if clean_up:
        runtime.cleanup()

    server.gate.set()  # the transfer under way ends; nothing after it may start
    deadline = time.monotonic() + 30
    while stage_threads() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not stage_threads()
    assert not task_dir.root.exists()
    return runtime


def test_a_cancelled_input_stage_stops_at_the_next_file(
    server: GatedServer, tmp_path: Path
) -> None:
    task = Task.model_validate(
        {
            "id": "t-cancel-inputs",
            "executors": [{"image": "alpine", "command": ["true"]}],
            "inputs": [
                {"path": "/data/slow", "url": f"{server.url}/slow"},
                *({"path": f"/data/f{i}", "url": f"{server.url}/f{i}"} for i in range(5)),
            ],
        }
    )
    cancel_while_slow_is_served(server, tmp_path, task, lambda r: r.stage_inputs(task))
    assert server.asked == ["GET /slow"]


def test_a_cancelled_output_stage_stops_at_the_next_file(
    server: GatedServer, tmp_path: Path
) -> None:
    task = Task.model_validate(
        {
            "id": "t-cancel-outputs",
            "executors": [{"image": "alpine", "command": ["true"]}],
            "outputs": [
                {"path": "/data/slow", "url": f"{server.url}/slow"},
                {"path": "/data/out", "url": f"{server.url}/out", "type": "DIRECTORY"},
                {"path": "/data/out/a", "url": f"{server.url}/a"},
            ],
        }
    )
    cancel_while_slow_is_served(
        server, tmp_path, task, lambda r: r.stage_outputs(task, False), clean_up=False
    )
    assert server.asked == ["PUT /slow"]
