"""What the local runtime needs from the filer: both stages, run in-process on the task volume."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from tesk.filer.base import InputsStaged, OutputsStaged
from tesk.tes.models import Task


class Stager(Protocol):
    def stage_inputs(self, task: Task, volume_root: Path) -> InputsStaged:
        """Download every input into the volume. Raises StageError."""

    def stage_outputs(self, task: Task, volume_root: Path, executors_failed: bool) -> OutputsStaged:
        """Upload the outputs found in the volume. Raises StageError."""
