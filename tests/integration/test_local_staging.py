"""The local runtime's filer stages with the real filer: what a cancel does to a running stage."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tesk.backends.local.bwrap import BwrapLauncher
from tesk.backends.local.layout import DataDir
from tesk.backends.local.runtime import LocalRuntime
from tesk.config import FilerConfig, RetryConfig
from tesk.engine.cancellation import Cancellation, Cancelled
from tesk.filer import Filer
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


def cancel_while_slow_is_served(
    server: GatedServer,
    tmp_path: Path,
    task: Task,
    stage: Callable[[LocalRuntime, Cancellation], object],
) -> None:
    """Start the stage, cancel while the server holds back `/slow`, then let `/slow` end.

    The stage must end while the server still holds the request (the cancel breaks it off) and
    send nothing after it.
    """
    filer = Filer(FilerConfig(retry=RetryConfig(attempts=3, initial_backoff_s=5)))
    task_dir = DataDir(tmp_path / "data").task(task.id)
    runtime = LocalRuntime(task_dir, BwrapLauncher(), filer)
    runtime.prepare(task)
    for name in ("a", "b", "c"):
        (runtime.volume / "data" / "out" / name).parent.mkdir(parents=True, exist_ok=True)
        (runtime.volume / "data" / "out" / name).write_text(name)
    (runtime.volume / "data" / "slow").write_text("slow")
    cancel = Cancellation()
    errors: list[Exception] = []

    def run() -> None:
        try:
            stage(runtime, cancel)
        except Exception as exc:
            errors.append(exc)

    staging = threading.Thread(target=run)
    staging.start()
    assert server.slow_asked.wait(30)
    cancel.cancel()
    staging.join(30)
    assert not staging.is_alive()
    assert not server.gate.is_set()  # it ended while the server still held the request
    assert [type(e) for e in errors] == [Cancelled]
    runtime.cleanup()
    assert not task_dir.root.exists()
    server.gate.set()


def test_a_cancel_breaks_off_the_input_transfer_under_way_and_starts_no_other(
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
    cancel_while_slow_is_served(server, tmp_path, task, lambda r, c: r.stage_inputs(task, c))
    assert server.asked == ["GET /slow"]


def test_a_cancel_breaks_off_the_output_transfer_under_way_and_starts_no_other(
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
        server, tmp_path, task, lambda r, c: r.stage_outputs(task, False, c)
    )
    assert server.asked == ["PUT /slow"]
