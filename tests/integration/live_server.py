"""Start a real `tesk serve` on 127.0.0.1 for end-to-end tests."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

TESK = str(Path(sys.executable).with_name("tesk"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def default_runtime() -> str:
    """bwrap where present (no image registry on CI machines), else let TESK choose."""
    return "bwrap" if shutil.which("bwrap") else "auto"


@dataclass
class LiveServer:
    url: str
    data_dir: Path
    files: Path
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def api(self) -> str:
        return f"{self.url}/ga4gh/tes/v1"

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def start_server(
    root: Path,
    *extra: str,
    env: dict[str, str] | None = None,
    runtime: str | None = None,
    port: int | None = None,
) -> LiveServer:
    data_dir = root / "data"
    files = root / "files"
    files.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log = root / f"server-{port}.log"
    args: Sequence[str] = [
        TESK,
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--runtime",
        runtime or default_runtime(),
        "--file-root",
        str(files),
        *extra,
    ]
    process = subprocess.Popen(
        args,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )
    server = LiveServer(f"http://127.0.0.1:{port}", data_dir, files, process, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"tesk serve exited with {process.returncode}:\n{server.log_tail()}")
        try:
            if requests.get(f"{server.api}/service-info", timeout=5).status_code == 200:
                return server
        except requests.RequestException:
            pass
        time.sleep(0.1)
    server.stop(signal.SIGKILL)
    raise RuntimeError(f"tesk serve did not answer within 30 s:\n{server.log_tail()}")


@contextmanager
def live_server(root: Path, *extra: str, **kwargs: object) -> Iterator[LiveServer]:
    server = start_server(root, *extra, **kwargs)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.stop()


def processes_matching(marker: str) -> list[int]:
    """Pids whose command line contains `marker` (to prove nothing was left behind)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            found.append(int(entry.name))
    return found
