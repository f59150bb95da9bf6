"""Stopping a filer stage from another thread, between two files.

A transfer cannot be interrupted from outside, so a cancelled task's stage would otherwise go on
to its last file. A stage run inside `stop_when(event)` checks the event before each input and
output and before each file it writes or sends, and ends with StageStopped once it is set; the
file under way is finished (or abandoned by its transfer). The event is held by the running
thread instead of passed along because the stage's callers (the Stager contract and what wraps
it) hand over only the task and its volume.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from tesk.filer.base import TransferError

_current = threading.local()


class StageStopped(TransferError):
    """The stage was stopped from outside (the task was cancelled)."""


@contextlib.contextmanager
def stop_when(event: threading.Event) -> Iterator[None]:
    """In this thread, within the block, filer stages end at the next file once `event` is set."""
    previous = getattr(_current, "event", None)
    _current.event = event
    try:
        yield
    finally:
        _current.event = previous


def check_stopped() -> None:
    """Raise StageStopped if this thread's stage was told to stop."""
    event: threading.Event | None = getattr(_current, "event", None)
    if event is not None and event.is_set():
        raise StageStopped("the stage was stopped: the task was cancelled")
