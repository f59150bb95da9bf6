"""Shared helpers of the client tests (this module holds no tests).

`LiveApi`: the real TES API (MemoryStore, FakeBackend) served by werkzeug on 127.0.0.1 in a
thread. `RecordingServer`: a canned WSGI server on 127.0.0.1 that records what it was sent, for
what the TES API cannot be made to do (fail, answer HTML, check credentials).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from connexion import App
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from tesk.tes.models import ExecutorLog, TaskLog, timestamp
from tesk.tes.progress import Progress
from tesk.tes.states import State
from tests.fakes.fake_backend import FakeBackend
from tests.unit.api.support import Api, attach, new_app

START = timestamp(datetime(2026, 1, 1, 12, 0, tzinfo=UTC))
END = timestamp(datetime(2026, 1, 1, 12, 1, tzinfo=UTC))


@dataclass
class LiveApi:
    api: Api
    url: str

    @property
    def store(self) -> Any:
        return self.api.store

    def set_state(
        self,
        task_id: str,
        state: State,
        *,
        exit_codes: tuple[int, ...] = (),
        system_logs: tuple[str, ...] = (),
    ) -> None:
        """Store what an engine would report: `state`, executor logs, system log lines."""
        record = self.store.get(task_id)
        assert record is not None
        log = TaskLog(
            start_time=START,
            end_time=END if state not in (State.INITIALIZING, State.RUNNING) else None,
            logs=[
                ExecutorLog(exit_code=code, start_time=START, end_time=END, stdout="", stderr="")
                for code in exit_codes
            ],
            system_logs=list(system_logs) or None,
        )
        applied = self.store.update(task_id, Progress(state=state, seq=record.seq + 1, log=log))
        assert applied is not None, f"{record.state} -> {state} was refused"


@contextmanager
def serving(app: Callable[..., Any]) -> Iterator[str]:
    """Serve a WSGI app on a free loopback port in a thread; yields its root URL."""
    httpd: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        thread.join()


@contextmanager
def live_api(app: App | None = None, backend: FakeBackend | None = None) -> Iterator[LiveApi]:
    """Serve `app` (default: a new one; building one takes ~0.3 s) with a fresh service."""
    app = app or new_app()
    api = attach(app, backend=backend or FakeBackend())
    with serving(app.app) as url:
        yield LiveApi(api, url)


@dataclass
class Canned:
    """One answer of a RecordingServer."""

    status: int = 200
    body: str = "{}"
    content_type: str = "application/json"


@dataclass
class RecordingServer:
    """Answers with `answers` in turn (the last one repeats) and records every request."""

    answers: list[Canned] = field(default_factory=lambda: [Canned()])
    requests: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        self.requests.append(
            {
                "method": request.method,
                "path": request.path,
                "args": request.args.to_dict(flat=False),
                "authorization": request.headers.get("Authorization"),
                "body": request.get_data(as_text=True),
            }
        )
        answer = self.answers[min(len(self.requests) - 1, len(self.answers) - 1)]
        response = Response(answer.body, status=answer.status, content_type=answer.content_type)
        return response(environ, start_response)


def closed_port_url() -> str:
    """A loopback URL nothing listens on."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
