"""Where the local backend keeps things in TESK's data dir.

    <data_dir>/runner.lock              held by the one runner of this data dir
    <data_dir>/runner.sock              wake-up datagrams from the API processes
    <data_dir>/tasks/<id>/volume/...    the task volume: every mount point at its TES path
    <data_dir>/tasks/<id>/logs/         executor stdout/stderr not written to the volume
    <data_dir>/tasks/<id>/tmp/<index>/  each executor's private /tmp

A task's directory lives as long as the task runs; nothing of it is kept afterwards (the log
tails are in the task's ExecutorLogs).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# Task ids become directory and container names: only characters safe in both.
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def check_task_id(task_id: str | None) -> str:
    if not task_id or not _SAFE_ID.fullmatch(task_id):
        raise ValueError(f"task id {task_id!r} cannot name a directory or a container")
    return task_id


@dataclass(frozen=True)
class TaskDir:
    root: Path

    @property
    def volume(self) -> Path:
        return self.root / "volume"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def tmp(self, index: int) -> Path:
        return self.root / "tmp" / str(index)


@dataclass(frozen=True)
class DataDir:
    root: Path  # absolute

    @property
    def lock_file(self) -> Path:
        return self.root / "runner.lock"

    @property
    def socket_path(self) -> Path:
        return self.root / "runner.sock"

    @property
    def tasks(self) -> Path:
        return self.root / "tasks"

    def task(self, task_id: str | None) -> TaskDir:
        return TaskDir(self.tasks / check_task_id(task_id))
