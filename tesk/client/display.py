"""Output of the client commands: rich on a terminal, plain lines for pipes and files."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any, TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from tesk.client.usage import usage_lines
from tesk.client.waiting import Watched

_STATE_STYLES = {
    "COMPLETE": "green",
    "EXECUTOR_ERROR": "red",
    "SYSTEM_ERROR": "bold red",
    "CANCELED": "yellow",
    "CANCELING": "yellow",
    "PREEMPTED": "magenta",
    "RUNNING": "cyan",
    "INITIALIZING": "blue",
    "QUEUED": "dim",
}


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def print_json(document: Any, stream: TextIO) -> None:
    """Pretty JSON: highlighted on a terminal, plain (and parseable) otherwise."""
    text = json.dumps(document, indent=2, ensure_ascii=False)
    if is_terminal(stream):
        Console(file=stream).print_json(text)
    else:
        stream.write(text + "\n")


def print_usage(task: dict[str, Any], stream: TextIO) -> None:
    """The usage block of a task (tesk/client/usage.py); headings in bold on a terminal."""
    lines = usage_lines(task)
    if not is_terminal(stream):
        stream.write("".join(line + "\n" for line in lines))
        return
    console = Console(file=stream)
    for line in lines:
        console.print(Text(line, style="" if line.startswith(" ") else "bold"))


def print_tasks(tasks: Sequence[dict[str, Any]], stream: TextIO) -> None:
    """A table of tasks on a terminal; otherwise one tab-separated line per task:
    id, state, name, creation time (empty fields stay empty)."""
    rows = [
        [
            _text(task.get("id")),
            _text(task.get("state")),
            _text(task.get("name")),
            _text(task.get("creation_time")),
        ]
        for task in tasks
    ]
    if not is_terminal(stream):
        for row in rows:
            stream.write("\t".join(row) + "\n")
        return
    table = Table(box=None, header_style="bold")
    # Ids stay whole (they are copied from here); other columns fold when the terminal is narrow.
    table.add_column("ID", no_wrap=True)
    for column in ("STATE", "NAME", "CREATED"):
        table.add_column(column, overflow="fold")
    for row in rows:
        # Text cells: names and ids are shown as they are, never read as rich markup.
        table.add_row(
            Text(row[0]), Text(row[1], style=_STATE_STYLES.get(row[1], "")), Text(row[2]), row[3]
        )
    Console(file=stream).print(table)


class PlainProgress:
    """One line per change of a task: `ID STATE (executors done: 1/3)`, then the outcome."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._shown: dict[str, str] = {}

    def update(self, tasks: Sequence[Watched]) -> None:
        for task in tasks:
            if task.state is None and task.error is None:
                continue  # not read yet (the server did not answer this time)
            line = task.describe()
            if self._shown.get(task.task_id) != line:
                self._shown[task.task_id] = line
                self._stream.write(line + "\n")
                self._stream.flush()

    def finish(self, tasks: Sequence[Watched], timed_out: bool) -> None:
        if timed_out:
            for task in tasks:
                if not task.finished:
                    self._stream.write(f"{task.task_id} {task.state or 'UNKNOWN'}: timed out\n")
        self._stream.flush()


class LiveProgress:
    """A live table of the tasks (state, executors done, time in the state) on a terminal."""

    def __init__(self, stream: TextIO) -> None:
        self._console = Console(file=stream)
        self._live: Live | None = None

    def update(self, tasks: Sequence[Watched]) -> None:
        table = _progress_table(tasks, timed_out=False)
        if self._live is None:
            self._live = Live(table, console=self._console, refresh_per_second=4)
            self._live.start()
        else:
            self._live.update(table, refresh=True)

    def finish(self, tasks: Sequence[Watched], timed_out: bool) -> None:
        table = _progress_table(tasks, timed_out)
        if self._live is None:
            self._console.print(table)
            return
        self._live.update(table, refresh=True)
        self._live.stop()


def progress_display(stream: TextIO) -> LiveProgress | PlainProgress:
    return LiveProgress(stream) if is_terminal(stream) else PlainProgress(stream)


def _progress_table(tasks: Sequence[Watched], timed_out: bool) -> Table:
    table = Table(box=None, header_style="bold")
    table.add_column("TASK", no_wrap=True)
    for column in ("NAME", "STATE", "EXECUTORS", "FOR", "DETAIL"):
        table.add_column(column, overflow="fold")
    now = time.monotonic()
    for task in tasks:
        state = "ERROR" if task.error is not None else task.state or "…"
        detail = task.error or task.reason or ""
        if timed_out and not task.finished:
            detail = "timed out"
        style = _STATE_STYLES.get(state, "bold red" if task.error else "")
        table.add_row(
            Text(task.task_id),
            Text(task.name or ""),
            Text(state, style=style),
            task.progress(),
            "" if task.finished else _duration(now - task.since),
            Text(detail),
        )
    return table


def _duration(seconds: float) -> str:
    seconds = int(max(0.0, seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _text(value: Any) -> str:
    return "" if value is None else " ".join(str(value).split())
