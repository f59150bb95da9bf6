"""A task's cancellation, handed explicitly to everything that waits or moves data for it.

Whoever cancels calls `cancel()`; that sets the flag every step checks (`check`, `wait`) and, at
once and in the cancelling thread, runs the callbacks registered by whatever is blocked right now
(a process to kill, a connection to shut down). So nothing polls, and nothing is stored per
thread: a blocked executor or transfer is stopped by the cancel itself.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator

logger = logging.getLogger(__name__)


class Cancelled(Exception):
    """The task was cancelled; the step that raised it stopped."""


class Cancellation:
    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: dict[int, Callable[[], None]] = {}
        self._next = 0

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def cancel(self) -> None:
        """Request cancellation and stop whatever is blocked now; idempotent."""
        with self._lock:
            if self._event.is_set():
                return
            self._event.set()
            callbacks = list(self._callbacks.values())
            self._callbacks.clear()
        for callback in callbacks:
            _run(callback)

    def check(self) -> None:
        """Raise Cancelled once cancellation was requested."""
        if self._event.is_set():
            raise Cancelled("the task was cancelled")

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`; True (at once) when cancellation is requested meanwhile."""
        return self._event.wait(seconds)

    @contextlib.contextmanager
    def on_cancel(self, callback: Callable[[], None]) -> Iterator[None]:
        """Within the block, a cancel runs `callback` (at once, if it was cancelled already)."""
        with self._lock:
            key = self._next
            self._next += 1
            if not self._event.is_set():
                self._callbacks[key] = callback
                registered = True
            else:
                registered = False
        if not registered:
            _run(callback)
        try:
            yield
        finally:
            with self._lock:
                self._callbacks.pop(key, None)


def _run(callback: Callable[[], None]) -> None:
    try:
        callback()
    except Exception:
        logger.exception("a cancel callback failed")
