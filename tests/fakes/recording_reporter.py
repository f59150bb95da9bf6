"""A ProgressReporter that keeps every report and folds them like a store would."""

from __future__ import annotations

import threading
from collections.abc import Callable

from tesk.tes.progress import Progress, TaskProgressState, reduce
from tesk.tes.states import State


class RecordingReporter:
    def __init__(
        self,
        start: State = State.INITIALIZING,
        fail: Callable[[Progress], bool] | None = None,
    ) -> None:
        """`start`: the stored state before the first report; `fail`: which deliveries raise."""
        self.reports: list[Progress] = []
        self.attempts: list[Progress] = []
        self.folded = TaskProgressState(state=start, seq=0, log=None)
        self._fail = fail
        self._lock = threading.Lock()

    def report(self, progress: Progress) -> None:
        with self._lock:
            self.attempts.append(progress)
            if self._fail is not None and self._fail(progress):
                raise ConnectionError("store unreachable")
            self.reports.append(progress)
            new = reduce(self.folded, progress)
            if new is not None:
                self.folded = new

    def store_state(self, state: State) -> None:
        """Simulate an out-of-band change (a cancel request stored by the API)."""
        with self._lock:
            new = reduce(self.folded, Progress(state))
            assert new is not None, f"{self.folded.state} -> {state} is not allowed"
            self.folded = new

    @property
    def states(self) -> list[State]:
        return [p.state for p in self.reports]

    @property
    def last(self) -> Progress:
        return self.reports[-1]
