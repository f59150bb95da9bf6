"""Level-triggered controllers: a thread reconciling keys from a de-duplicating work queue."""

from __future__ import annotations

import heapq
import threading
import time
import traceback
from collections.abc import Hashable

from .errors import ApiError
from .store import Event, Store


class WorkQueue:
    """Keys to reconcile; a key queued twice before it is processed is processed once."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._ready: list[Hashable] = []
        self._queued: set[Hashable] = set()
        self._delayed: list[tuple[float, int, Hashable]] = []
        self._counter = 0
        self._closed = False

    def add(self, key: Hashable) -> None:
        with self._cond:
            if key not in self._queued:
                self._queued.add(key)
                self._ready.append(key)
                self._cond.notify()

    def add_after(self, key: Hashable, seconds: float) -> None:
        if seconds <= 0:
            self.add(key)
            return
        with self._cond:
            self._counter += 1
            heapq.heappush(self._delayed, (time.monotonic() + seconds, self._counter, key))
            self._cond.notify()

    def get(self) -> Hashable | None:
        """The next key, or None once closed."""
        with self._cond:
            while True:
                if self._closed:
                    return None
                now = time.monotonic()
                while self._delayed and self._delayed[0][0] <= now:
                    _, _, key = heapq.heappop(self._delayed)
                    if key not in self._queued:
                        self._queued.add(key)
                        self._ready.append(key)
                if self._ready:
                    key = self._ready.pop(0)
                    self._queued.discard(key)
                    return key
                wait = self._delayed[0][0] - now if self._delayed else None
                self._cond.wait(wait)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class Controller:
    """Subclasses map store events to keys (`keys_for`) and reconcile one key (`sync`)."""

    name = "controller"

    def __init__(self, store: Store, errors: list[str]) -> None:
        self.store = store
        self.queue = WorkQueue()
        self._errors = errors
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        store.subscribe(self._on_event)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.queue.close()
        self._thread.join(timeout=5)

    def _on_event(self, event: Event) -> None:
        for key in self.keys_for(event):
            self.queue.add(key)

    def keys_for(self, event: Event) -> list[Hashable]:
        raise NotImplementedError

    def sync(self, key: Hashable) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while (key := self.queue.get()) is not None:
            try:
                self.sync(key)
            except ApiError as error:
                if error.code in (404, 409):
                    # Someone changed or removed the object meanwhile: look again.
                    self.queue.add_after(key, 0.05)
                else:
                    self._record(key)
            except Exception:
                self._record(key)

    def _record(self, key: Hashable) -> None:
        self._errors.append(f"{self.name} failed on {key!r}:\n{traceback.format_exc()}")
        self.queue.add_after(key, 0.5)
