"""`tesk serve`: the API in gunicorn workers, the backend's background work in this process.

The backend's runner or reconciler runs once, here. The API runs in a gunicorn child process started
with `python -m gunicorn` (never forked from this process, which runs threads); it gets the
effective settings through TESK_* environment variables and builds its own store and backend
(without starting them). This process forwards SIGINT/SIGTERM to the child, waits for it, stops
the backend and exits.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType

from tesk.api.security import exposure_warning
from tesk.app import ENV_STARTED_AT, build_backend, build_store, create_app
from tesk.backends.base import ComputeBackend
from tesk.observability.wiring import GUNICORN_LOGGER, prepare_serving_process
from tesk.settings import (
    ConfigError,
    Overrides,
    Settings,
    WorkerModel,
    load_settings,
)
from tesk.store.base import TaskStore

READY_TIMEOUT_S = 60.0
WSGI_APP = "tesk.app:wsgi()"
_PR_SET_PDEATHSIG = 1


@dataclass
class Supervisor:
    """Runs the API child process next to the started backend until a signal or the child ends."""

    command: list[str]
    env: dict[str, str]
    probe: tuple[str, int]
    on_ready: str
    stop_requested: bool = field(default=False, init=False)

    def run(self, backend: ComputeBackend, store: TaskStore) -> int:
        children: list[subprocess.Popen[bytes]] = []

        def forward(signum: int, _frame: FrameType | None) -> None:
            self.stop_requested = True
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)

        previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            # Started before the backend's threads exist: no fork from a threaded process.
            child = subprocess.Popen(self.command, env=self.env, preexec_fn=_die_with_parent)
            children.append(child)
            if self.stop_requested:
                child.send_signal(signal.SIGTERM)
            try:
                backend.start()
            except Exception as exc:
                _stop_child(child)
                store.close()
                print(f"tesk serve: cannot start the backend: {_one_line(exc)}", file=sys.stderr)
                return 2
            try:
                if _wait_until_listening(child, self.probe):
                    print(self.on_ready, flush=True)
                elif child.poll() is None:
                    print("tesk serve: the API is slow to answer; still waiting", file=sys.stderr)
                code = child.wait()
            finally:
                _stop_backend(backend, store)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if self.stop_requested:
            return 0
        print(
            f"tesk serve: the API server stopped unexpectedly (exit code {code})", file=sys.stderr
        )
        return code if code > 0 else 1


def serve(overrides: Overrides, workers: int) -> int:
    """Run `tesk serve`; returns the exit code (2: it could not start)."""
    try:
        settings = load_settings(overrides, configure_logging=True)
        _check_can_listen(settings.host, settings.port)
        # Before the store and the backend exist: they record metrics into the shared directory.
        prepare_serving_process(settings.custom)
    except Exception as exc:
        print(f"tesk serve: {_one_line(exc)}", file=sys.stderr)
        return 2
    warning = exposure_warning(settings.custom.auth.mode, settings.host)
    if warning:
        print(f"tesk serve: warning: {warning}", file=sys.stderr)
    store: TaskStore | None = None
    try:
        store = build_store(settings.custom)
        backend = build_backend(settings.custom, store, serving=True)
        # Build the app once here, so a broken spec or config stops us before any worker starts.
        create_app(settings, store=store, backend=backend)
    except Exception as exc:
        if store is not None:
            store.close()
        print(f"tesk serve: {_one_line(exc)}", file=sys.stderr)
        return 2
    return supervisor_for(settings, workers).run(backend, store)


def supervisor_for(settings: Settings, workers: int, app: str = WSGI_APP) -> Supervisor:
    """The supervisor of `workers` gunicorn workers serving `app` with these settings."""
    return Supervisor(
        command=gunicorn_command(settings, workers, app),
        env=child_env(settings),
        probe=(_probe_host(settings.host), settings.port),
        on_ready=_banner(settings),
    )


def gunicorn_command(
    settings: Settings, workers: int, app: str = WSGI_APP, *, followers: bool = True
) -> list[str]:
    """The API child's command line; `followers`: with the threads of stream followers."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--workers",
        str(workers),
        *_worker_options(settings, followers),
        "--bind",
        _bind(settings.host, settings.port),
        "--graceful-timeout",
        "10",
        "--error-logfile",
        "-",
        "--logger-class",
        GUNICORN_LOGGER,
        app,
    ]


def _worker_options(settings: Settings, followers: bool) -> list[str]:
    model = WorkerModel.from_env(os.environ)
    threads = model.request_threads
    if model.streams and followers:
        threads += settings.custom.streams.max_per_worker
    return ["--worker-class", model.worker_class, "--threads", str(threads)]


def child_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(settings.overrides.to_env())
    env[ENV_STARTED_AT] = datetime.now(UTC).isoformat()
    return env


def _banner(settings: Settings) -> str:
    base = f"http://{_bind(settings.host, settings.port)}"
    return (
        f"TESK {settings.custom.backend} backend: TES v1.1.0 at {base}/ga4gh/tes/v1 "
        f"(also {base}/v1; Swagger UI at {base}/ga4gh/tes/v1/ui/)"
    )


def _bind(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _probe_host(host: str) -> str:
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "::1"
    return host


def _check_can_listen(host: str, port: int) -> None:
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.create_server((host, port), family=family):
            pass
    except OSError as exc:
        raise ConfigError(f"cannot listen on {_bind(host, port)}: {exc.strerror or exc}") from None


def _wait_until_listening(child: subprocess.Popen[bytes], probe: tuple[str, int]) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline and child.poll() is None:
        try:
            with socket.create_connection(probe, timeout=1):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def _stop_child(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.terminate()
    try:
        child.wait(timeout=30)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def _stop_backend(backend: ComputeBackend, store: TaskStore) -> None:
    try:
        backend.stop()
    finally:
        store.close()


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if `tesk serve` dies without forwarding a signal."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, ConfigError):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
