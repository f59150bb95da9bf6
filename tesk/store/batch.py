"""Group commit: creates that arrive while another create is committing share the next commit.

With synced commits (SQLite `synchronous=FULL`, every PostgreSQL commit) a create costs one sync
of the log, and writers take turns. The threads of an API worker that want to create at the same
time therefore hand their rows to one of them, which writes them all in one transaction and one
sync; each caller returns only once its own rows are committed. If the shared transaction fails,
every row is written again in a transaction of its own, so each caller gets its own outcome (a
duplicate id fails that create alone).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

Item = TypeVar("Item")


@dataclass
class _Pending(Generic[Item]):
    item: Item
    done: bool = False
    error: BaseException | None = None


class GroupCommit(Generic[Item]):
    """`write(items)` writes and commits every item in one transaction, or raises."""

    def __init__(self, write: Callable[[Sequence[Item]], None]) -> None:
        self._write = write
        self._condition = threading.Condition()
        self._queue: list[_Pending[Item]] = []
        self._busy = False

    def submit(self, item: Item) -> None:
        """Return once `item` is committed; raise what writing it alone raised."""
        pending = _Pending(item)
        with self._condition:
            self._queue.append(pending)
            while self._busy and not pending.done:
                self._condition.wait()
            if not pending.done:
                self._busy = True
                batch, self._queue = self._queue, []
        if not pending.done:
            try:
                self._commit(batch)
            finally:
                with self._condition:
                    self._busy = False
                    self._condition.notify_all()
        if pending.error is not None:
            raise pending.error

    def _commit(self, batch: list[_Pending[Item]]) -> None:
        try:
            self._write([p.item for p in batch])
        except BaseException as exc:
            if len(batch) == 1:
                batch[0].error = exc
            else:
                for pending in batch:
                    try:
                        self._write([pending.item])
                    except BaseException as own:
                        pending.error = own
        for pending in batch:
            pending.done = True
