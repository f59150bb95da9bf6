"""Small builders shared by the filer integration tests."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tesk.tes.models import Task


def make_task(
    inputs: list[dict[str, Any]] | None = None, outputs: list[dict[str, Any]] | None = None
) -> Task:
    return Task.model_validate(
        {
            "executors": [{"image": "alpine", "command": ["true"]}],
            "inputs": inputs,
            "outputs": outputs,
        }
    )


def put(volume: Path, tes_path: str, data: bytes) -> Path:
    """Write a file into the task volume as an executor would."""
    path = volume / tes_path.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def random_bytes(size: int) -> bytes:
    return os.urandom(size)


def tree(root: Path) -> dict[str, bytes]:
    """Every file below `root` as relative path -> content."""
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }
