"""GetTaskEvents and ListEvents (TESK extensions): task events as Server-Sent Events.

Thin controllers: the EventFeed (tesk/events/feed.py) decides what a caller may follow and
follows it; this module only turns its events into `text/event-stream` text. A stream is a WSGI
iterable: when the client goes away, the server closes it, which closes the follower.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from flask import Flask, Response, current_app, request

from tesk.api.security import current_caller
from tesk.events.feed import EventFeed, EventFilters, Follower, parse_last_event_id
from tesk.tes.events import EventKind, TaskEvent
from tesk.tes.models import timestamp

CONTENT_TYPE = "text/event-stream"
_FEED_KEY = "TESK_EVENT_FEED"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HEADERS = {
    "Cache-Control": "no-cache",
    # Proxies (nginx) must pass each event on at once instead of buffering the stream.
    "X-Accel-Buffering": "no",
}
# Sent first, so that the client gets the response headers before the first event.
_OPENING = b": task events\n\n"
_KEEPALIVE = b": keepalive\n\n"


def attach_feed(app: Flask, feed: EventFeed) -> None:
    app.config[_FEED_KEY] = feed


def GetTaskEvents(id: str, last_event_id: str | None = None) -> Response:
    after = _resume_after(last_event_id)
    follower = _feed().task_events(id, current_caller(), after)
    if follower is None:
        # The task ended and every event was sent: 204 tells an EventSource not to reconnect.
        return Response(status=204, headers=_HEADERS)
    return _stream(follower)


def ListEvents(
    state: str | None = None,
    name_prefix: str | None = None,
    tag_key: list[str] | str | None = None,
    tag_value: list[str] | str | None = None,
    last_event_id: str | None = None,
) -> Response:
    filters = EventFilters(
        state=state,
        name_prefix=name_prefix,
        tag_keys=_as_list(tag_key),
        tag_values=_as_list(tag_value),
    )
    after = _resume_after(last_event_id)
    return _stream(_feed().all_events(filters, current_caller(), after))


def encode(event: TaskEvent | None) -> bytes:
    """One event (None: a keepalive comment) in the text/event-stream format."""
    if event is None:
        return _KEEPALIVE
    data: dict[str, Any] = {
        "task_id": event.task_id,
        "state": event.state.value,
        "time": timestamp(_EPOCH + timedelta(microseconds=event.time_us)),
    }
    name = "state"
    if event.kind is not EventKind.STATE:
        name = "executor"
        data["executor"] = event.executor
        data["phase"] = "started" if event.kind is EventKind.EXECUTOR_STARTED else "ended"
        if event.exit_code is not None:
            data["exit_code"] = event.exit_code
    lines = b""
    if event.id > 0:  # 0: the state of a task older than the events (it has no event id)
        data["id"] = event.id
        lines = b"id: %d\n" % event.id
    return lines + b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _stream(follower: Follower) -> Response:
    def body() -> Iterator[bytes]:
        try:
            yield _OPENING
            for event in follower:
                yield encode(event)
        finally:
            follower.close()

    return Response(body(), mimetype=CONTENT_TYPE, headers=_HEADERS)


def _resume_after(query_value: str | None) -> int | None:
    header = request.headers.get("Last-Event-ID")
    if header is not None and header.strip():
        return parse_last_event_id(header, "Last-Event-ID")
    return parse_last_event_id(query_value, "last_event_id")


def _feed() -> EventFeed:
    found = current_app.config.get(_FEED_KEY)
    if not isinstance(found, EventFeed):
        raise RuntimeError("no EventFeed attached to this app (see tesk.app.create_app)")
    return found


def _as_list(value: list[str] | str | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)
