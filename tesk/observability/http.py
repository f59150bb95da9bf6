"""One log line and one latency observation per API request.

The line says method, path (never the query string), operationId, status, duration and the task
id when the request names or creates one. Probes (/healthz, /readyz) and /metrics scrapes come
every few seconds; they are logged at DEBUG. Request headers are never logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import orjson
from flask import Flask, Response, current_app, g, request

from tesk.observability.recording import Recorder

logger = logging.getLogger("tesk.requests")

_QUIET = frozenset({"healthz", "readyz", "metrics"})
_LEGACY_SERVICE_INFO = "service-info"
_START = "_tesk_request_start"


Caller = Callable[[], str | None]
"""Who made the current request (an authenticated subject), or None."""


def register_request_hooks(
    app: Flask, recorder: Recorder, *, log_requests: bool, caller: Caller | None = None
) -> None:
    def started() -> None:
        setattr(g, _START, time.perf_counter())

    def finished(response: Response) -> Response:
        start = getattr(g, _START, None)
        if start is None:
            return response
        seconds = time.perf_counter() - start
        operation = operation_id()
        try:
            recorder.request_handled(operation, request.method, response.status_code, seconds)
        except Exception:
            logger.exception("recording the request failed")
        if log_requests:
            _log(operation, response, seconds, _subject(caller))
        return response

    # First of all before-request hooks: a request another hook turns away (413, 401) is still
    # timed and logged.
    app.before_request_funcs.setdefault(None, []).insert(0, started)
    app.after_request(finished)


def operation_id() -> str:
    """The TES operationId of the current request, the name of a non-TES route, or `unmatched`."""
    rule = request.url_rule
    if rule is None:
        return "unmatched"
    endpoint = str(rule.endpoint)
    if "." not in endpoint:
        return endpoint  # a route of TESK's own: healthz, readyz, metrics
    # Connexion names endpoints `<base path>.<controller module>_<operationId>`; the view
    # functions keep the controller's name, which is the operationId.
    view = current_app.view_functions.get(endpoint)
    name = str(getattr(view, "__name__", ""))
    if name[:1].isupper():
        return name
    tail: str = endpoint.rsplit(".", 1)[-1]
    for known in ("openapi", "swagger_ui"):
        if known in tail:
            return known
    return tail


def _subject(caller: Caller | None) -> str | None:
    if caller is None:
        return None
    try:
        return caller()
    except Exception:  # e.g. a request turned away before it was authenticated
        return None


def _log(operation: str, response: Response, seconds: float, subject: str | None) -> None:
    task_id = _task_id(operation, response)
    duration_ms = round(seconds * 1000, 1)
    fields = {
        "method": request.method,
        "path": request.path,
        "operation": operation,
        "status": response.status_code,
        "duration_ms": duration_ms,
    }
    message = "%s %s %s %d %.1fms"
    args: tuple[object, ...] = (
        request.method,
        request.path,
        operation,
        response.status_code,
        duration_ms,
    )
    if task_id:
        fields["task_id"] = task_id
        message += " task=%s"
        args += (task_id,)
    if subject:
        fields["user"] = subject
        message += " user=%s"
        args += (subject,)
    level = logging.DEBUG if operation in _QUIET else logging.INFO
    logger.log(level, message, *args, extra=fields)


def _task_id(operation: str, response: Response) -> str | None:
    view_args = request.view_args or {}
    named = view_args.get("id")
    if isinstance(named, str) and named != _LEGACY_SERVICE_INFO:
        return named
    if operation == "CreateTask" and response.status_code == 200 and response.is_json:
        # The body is `{"id": ...}` encoded a moment ago: orjson reads it back for a fraction of
        # what Flask's get_json costs on every create.
        try:
            body = orjson.loads(response.get_data())
        except orjson.JSONDecodeError:
            return None
        if isinstance(body, dict) and isinstance(body.get("id"), str):
            return str(body["id"])
    return None
