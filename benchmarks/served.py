"""A real `tesk serve` on 127.0.0.1, for the load benchmark and the load and crash tests.

It runs in a session of its own, so that a test can kill it and everything it started with one
signal to the process group, as a crash or an OOM kill would.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml

TESK = Path(sys.executable).with_name("tesk")
BASE_PATH = "/ga4gh/tes/v1"


def can_serve() -> bool:
    """Whether this checkout has every part `tesk serve` needs (the filer among them)."""
    return hasattr(importlib.import_module("tesk.filer"), "check_url")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ServedTesk:
    data_dir: Path
    custom: dict[str, Any] = field(default_factory=dict)  # the `custom:` section of an overlay
    store_url: str | None = None
    workers: int = 2
    runtime: str = "bwrap"
    port: int = field(default_factory=free_port)
    log: Path | None = None
    env: dict[str, str] = field(default_factory=dict)  # on top of the environment, TESK_* removed
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{BASE_PATH}"

    def start(self, timeout: float = 60.0) -> ServedTesk:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        overlay = self.data_dir.parent / f"{self.data_dir.name}-overlay.yaml"
        overlay.write_text(yaml.safe_dump({"custom": self.custom}))
        command = [
            str(TESK), "serve",
            "--port", str(self.port),
            "--data-dir", str(self.data_dir),
            "--runtime", self.runtime,
            "--workers", str(self.workers),
            "--config", str(overlay),
        ]  # fmt: skip
        if self.store_url:
            command += ["--store-url", self.store_url]
        log = self.log or self.data_dir.parent / f"{self.data_dir.name}-serve.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("TESK_")} | self.env
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"tesk serve exited with {self.process.returncode}: {tail(log)}")
            try:
                if requests.get(f"http://127.0.0.1:{self.port}/readyz", timeout=1).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"tesk serve was not ready after {timeout} s: {tail(log)}")

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait (graceful); returns the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return -9

    def kill(self) -> None:
        """SIGKILL to the whole process group: no handler, no cleanup runs."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)


def tail(path: Path, limit: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return ""
