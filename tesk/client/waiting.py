"""`tesk wait`: follow tasks until they end, and turn their outcome into an exit code.

Where the server offers task events (TESK's `/tasks/{id}/events`), each task is followed on its
event stream, in a thread of its own, and learns of every change at once without asking again;
elsewhere (another TES server, an older TESK, a broken stream) the task is polled.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tesk.client.http import ClientError, ServerError, TesClient
from tesk.client.sse import StreamBroken, StreamEvent

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_EXECUTOR_ERROR = 3
EXIT_SYSTEM_ERROR = 4
EXIT_CANCELED = 5
EXIT_PREEMPTED = 6
EXIT_TIMEOUT = 7

STATE_EXIT_CODES = {
    "COMPLETE": EXIT_OK,
    "EXECUTOR_ERROR": EXIT_EXECUTOR_ERROR,
    "SYSTEM_ERROR": EXIT_SYSTEM_ERROR,
    "CANCELED": EXIT_CANCELED,
    "PREEMPTED": EXIT_PREEMPTED,
}
"""The final TES states and the exit code of `tesk wait` for each."""

# With several tasks, the first code of this list that any of them has wins.
PRECEDENCE = (
    EXIT_ERROR,
    EXIT_SYSTEM_ERROR,
    EXIT_EXECUTOR_ERROR,
    EXIT_PREEMPTED,
    EXIT_CANCELED,
    EXIT_TIMEOUT,
    EXIT_OK,
)

MAX_FAILED_POLLS = 5
"""Consecutive failed reads of a task (server away, 5xx) before `wait` gives up on it."""

MAX_STREAMS = 32
"""Tasks followed on event streams at most (one connection each); more tasks are polled."""


@dataclass
class Watched:
    """What is known of one task being waited for."""

    task_id: str
    name: str | None = None
    state: str | None = None
    executors: int | None = None
    executors_done: int | None = None
    reason: str | None = None  # why it failed, once it ended badly
    error: str | None = None  # it could not be read (no such task, server gone)
    failed_polls: int = 0
    since: float = field(default_factory=time.monotonic)
    streaming: bool = False  # followed on its event stream (not polled) for now

    @property
    def finished(self) -> bool:
        return self.error is not None or self.state in STATE_EXIT_CODES

    def progress(self) -> str:
        """`2/3` executors done, or empty when unknown."""
        if self.executors is None or self.executors_done is None:
            return ""
        return f"{self.executors_done}/{self.executors}"

    def describe(self) -> str:
        """One line: id, state, executor progress, reason or error."""
        if self.error is not None:
            return f"{self.task_id} ERROR: {self.error}"
        text = f"{self.task_id} {self.state or 'UNKNOWN'}"
        if self.progress():
            text += f" (executors done: {self.progress()})"
        if self.reason:
            text += f": {self.reason}"
        return text


class Display(Protocol):
    def update(self, tasks: Sequence[Watched]) -> None: ...

    def finish(self, tasks: Sequence[Watched], timed_out: bool) -> None: ...


def exit_code(tasks: Sequence[Watched], timed_out: bool) -> int:
    """0 only when every task ended COMPLETE; see PRECEDENCE for mixed outcomes."""
    codes = set()
    for task in tasks:
        if task.error is not None:
            codes.add(EXIT_ERROR)
        elif task.state in STATE_EXIT_CODES:
            codes.add(STATE_EXIT_CODES[task.state])
        else:
            codes.add(EXIT_TIMEOUT if timed_out else EXIT_ERROR)
    for code in PRECEDENCE:
        if code in codes:
            return code
    return EXIT_OK


class Waiter:
    def __init__(
        self,
        client: TesClient,
        task_ids: Sequence[str],
        *,
        interval_s: float = 1.0,
        timeout_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        use_events: bool = True,
    ) -> None:
        self._client = client
        self.tasks = [Watched(task_id) for task_id in dict.fromkeys(task_ids)]
        self._interval = interval_s
        self._timeout = timeout_s
        self._clock = clock
        self._sleep = sleep
        self._use_events = use_events and len(self.tasks) <= MAX_STREAMS
        self._changed = threading.Event()
        self._stopping = threading.Event()

    def run(self, display: Display) -> int:
        """Poll until every task ended or the timeout passed; return the exit code."""
        deadline = None if self._timeout is None else self._clock() + self._timeout
        timed_out = False
        try:
            if self._use_events:
                self._start_streams()
            while True:
                self.poll()
                display.update(self.tasks)
                if all(task.finished for task in self.tasks):
                    break
                now = self._clock()
                if deadline is not None and now >= deadline:
                    timed_out = True
                    break
                pause = self._interval if deadline is None else min(self._interval, deadline - now)
                self._pause(max(0.0, pause))
        except BaseException:
            # Ctrl-C: leave the terminal as it was (a live display hides the cursor).
            self._stopping.set()
            display.finish(self.tasks, timed_out=False)
            raise
        self._stopping.set()
        display.finish(self.tasks, timed_out)
        return exit_code(self.tasks, timed_out)

    def poll(self) -> None:
        """Read every unfinished task that no event stream follows."""
        for task in self.tasks:
            if not task.finished and not task.streaming:
                self._poll_one(task)

    def _pause(self, seconds: float) -> None:
        if any(task.streaming for task in self.tasks):
            # A stream's event ends the pause at once.
            self._changed.wait(seconds)
            self._changed.clear()
        else:
            self._sleep(seconds)

    # -- event streams ---------------------------------------------------------------------

    def _start_streams(self) -> None:
        for task in self.tasks:
            task.streaming = True
            threading.Thread(
                target=self._stream_one, args=(task,), name="tesk-wait-events", daemon=True
            ).start()

    def _stream_one(self, task: Watched) -> None:
        """Follow `task` on its event stream; hand it back to polling if that is not possible."""
        try:
            _read(task, self._client.get_task(task.task_id, "BASIC"))
            for event in self._client.task_events(task.task_id):
                if self._stopping.is_set():
                    return
                if event.final and event.data.get("state") != "COMPLETE":
                    # Before the state: the task counts as finished from then on.
                    task.reason = self._reason(task.task_id)
                self._apply(task, event)
                self._changed.set()
                if task.finished:
                    break
        except (ClientError, StreamBroken):
            pass  # not offered, or broken for good: polling takes over (and reports errors)
        finally:
            task.streaming = False
            self._changed.set()

    def _apply(self, task: Watched, event: StreamEvent) -> None:
        if event.name == "state":
            state = event.data.get("state")
            if isinstance(state, str) and state != task.state:
                task.state = state
                task.since = self._clock()
        elif event.name == "executor" and event.data.get("phase") == "ended":
            index = event.data.get("executor")
            if isinstance(index, int):
                task.executors_done = max(task.executors_done or 0, index + 1)

    def _poll_one(self, task: Watched) -> None:
        try:
            document = self._client.get_task(task.task_id, "BASIC")
        except ServerError as exc:
            if exc.status in (400, 401, 403, 404):
                task.error = str(exc)
            else:
                self._failed(task, exc)
            return
        except ClientError as exc:
            self._failed(task, exc)
            return
        task.failed_polls = 0
        previous = task.state
        _read(task, document)
        if task.state != previous:
            task.since = self._clock()
        if task.state in STATE_EXIT_CODES and task.state != "COMPLETE":
            task.reason = self._reason(task.task_id)

    def _failed(self, task: Watched, exc: ClientError) -> None:
        task.failed_polls += 1
        if task.failed_polls >= MAX_FAILED_POLLS:
            task.error = str(exc)

    def _reason(self, task_id: str) -> str | None:
        """The last system log line of a failed task (only the FULL view has them)."""
        try:
            document = self._client.get_task(task_id, "FULL")
        except ClientError:
            return None
        return failure_reason(document)


def _read(task: Watched, document: dict[str, Any]) -> None:
    state = document.get("state")
    task.state = state if isinstance(state, str) else "UNKNOWN"
    name = document.get("name")
    task.name = name if isinstance(name, str) else task.name
    executors = document.get("executors")
    if isinstance(executors, list) and executors:
        task.executors = len(executors)
    logs = document.get("logs")
    if isinstance(logs, list) and logs and isinstance(logs[-1], dict):
        done = logs[-1].get("logs")
        task.executors_done = len(done) if isinstance(done, list) else 0
    elif task.executors is not None:
        task.executors_done = 0


def failure_reason(document: dict[str, Any]) -> str | None:
    logs = document.get("logs")
    if not isinstance(logs, list) or not logs or not isinstance(logs[-1], dict):
        return None
    lines = logs[-1].get("system_logs")
    if isinstance(lines, list) and lines and isinstance(lines[-1], str):
        return " ".join(lines[-1].split())
    executor_logs = logs[-1].get("logs")
    if isinstance(executor_logs, list):
        for index, entry in enumerate(executor_logs):
            code = entry.get("exit_code") if isinstance(entry, dict) else None
            if isinstance(code, int) and code != 0:
                return f"executor {index} exited with code {code}"
    return None
