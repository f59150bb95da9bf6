"""Server-Sent Events for the client: the text/event-stream format, and following a stream that
resumes with Last-Event-ID when its connection breaks."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

CONTENT_TYPE = "text/event-stream"
READ_TIMEOUT_S = 90.0
"""A stream silent this long is taken as broken (TESK sends a keepalive every 15 s)."""

FINAL_STATES = frozenset({"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED", "PREEMPTED"})

MAX_RECONNECTS = 5
"""Broken connections in a row (no event in between) before a follower gives up."""


@dataclass(frozen=True)
class StreamEvent:
    id: int | None
    name: str
    data: dict[str, Any]

    @property
    def final(self) -> bool:
        """Whether this is the event of a task's final state."""
        return self.name == "state" and self.data.get("state") in FINAL_STATES

    def describe(self) -> str:
        """time, task id and what happened, tab-separated (one line)."""
        what = str(self.data.get("state", "?"))
        if self.name == "executor":
            what = f"executor {self.data.get('executor')} {self.data.get('phase', '?')}"
            if "exit_code" in self.data:
                what += f" (exit code {self.data['exit_code']})"
        return f"{self.data.get('time', '')}\t{self.data.get('task_id', '')}\t{what}"


def parse(lines: Iterable[str]) -> Iterator[StreamEvent]:
    """The events of a text/event-stream, given its lines (without line ends)."""
    fields: dict[str, str] = {}
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                yield _event(fields, data)
            fields, data = {}, []
            continue
        if line.startswith(":"):
            continue  # a comment (keepalive)
        key, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if key == "data":
            data.append(value)
        else:
            fields[key] = value
    if data:
        yield _event(fields, data)


def _event(fields: dict[str, str], data: list[str]) -> StreamEvent:
    text = "\n".join(data)
    try:
        document = json.loads(text)
    except ValueError:
        document = {"text": text}
    raw_id = fields.get("id", "")
    event_id = int(raw_id) if raw_id.isdigit() else None
    return StreamEvent(
        event_id,
        fields.get("event", "message"),
        document if isinstance(document, dict) else {"value": document},
    )


class StreamBroken(Exception):
    """The connection of a stream broke (or the server ended it) before it was complete."""


def follow(
    open_stream: Callable[[int | None], Iterable[str]],
    *,
    last_event_id: int | None = None,
    until_final: bool = False,
    pause_s: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[StreamEvent]:
    """Events of the stream `open_stream(last_event_id)` opens, reopened after the last event
    seen when its connection breaks. Ends after a final state (`until_final`), or raises
    StreamBroken after MAX_RECONNECTS breaks in a row.

    `open_stream` raises what the first request raises (e.g. the stream is not offered).
    """
    failures = 0
    first = True
    while True:
        try:
            lines = open_stream(last_event_id)
            first = False
            for event in parse(lines):
                failures = 0
                if event.id is not None:
                    last_event_id = event.id
                yield event
                if until_final and event.final:
                    return
        except StreamBroken:
            if first:
                raise
        failures += 1
        if failures > MAX_RECONNECTS:
            raise StreamBroken(f"the event stream broke {failures} times in a row")
        sleep(pause_s)
