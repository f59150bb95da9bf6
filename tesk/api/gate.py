"""How many requests an API worker runs at once, with followers of live streams kept apart.

A gthread worker answers each request in a thread of a fixed pool. A follower of an executor's
output or of a task's events holds its thread for as long as it follows, so followers sharing the
pool with GetTask would, a few hundred of them, leave nothing to answer it. The pool is therefore
sized for both (tesk/server.py): ordinary requests pass a gate of `requests` at a time (the size
measured best for throughput, docs/performance.md) and streams take one of `streams` slots of
their own, or are answered 503 with Retry-After when all are taken.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# Every streaming endpoint, under both base paths (tesk/api/tes-1.1.0.patch.yaml).
STREAM_PATH = re.compile(
    r"^/(?:ga4gh/tes/v1|v1)/(?:events|tasks/[^/]+/(?:events|executors/[^/]+/(?:stdout|stderr)))$"
)


def is_stream(environ: dict[str, Any]) -> bool:
    return environ.get("REQUEST_METHOD") == "GET" and bool(
        STREAM_PATH.match(environ.get("PATH_INFO", ""))
    )


class RequestGate:
    """WSGI middleware: at most `requests` ordinary requests and `streams` streams at once."""

    def __init__(self, app: WsgiApp, *, requests: int, streams: int, retry_after_s: int) -> None:
        self._app = app
        self._requests = threading.BoundedSemaphore(max(1, requests))
        self._streams = threading.BoundedSemaphore(streams) if streams > 0 else None
        self._retry_after = str(retry_after_s)
        self.stream_slots = streams

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        if is_stream(environ):
            slots = self._streams
            if slots is None or not slots.acquire(blocking=False):
                return self._busy(start_response)
            return _released(self._app, environ, start_response, slots)
        return _released(self._app, environ, start_response, self._requests, wait=True)

    def _busy(self, start_response: Callable[..., Any]) -> list[bytes]:
        # Outside Flask: the problem body the error handlers write, by hand.
        detail = "every stream slot of this API worker is taken; retry later"
        body = json.dumps(
            {"title": "Service Unavailable", "status": 503, "detail": detail}
        ).encode()
        start_response(
            "503 SERVICE UNAVAILABLE",
            [
                ("Content-Type", "application/problem+json"),
                ("Content-Length", str(len(body))),
                ("Retry-After", self._retry_after),
            ],
        )
        return [body]


def _released(
    app: WsgiApp,
    environ: dict[str, Any],
    start_response: Callable[..., Any],
    slot: threading.BoundedSemaphore,
    *,
    wait: bool = False,
) -> Iterator[bytes]:
    """Run `app` holding `slot` until its response has been sent (or the client went away)."""
    if wait:
        slot.acquire()
    try:
        response = app(environ, start_response)
        try:
            yield from response
        finally:
            close = getattr(response, "close", None)
            if close is not None:
                close()
    finally:
        slot.release()
