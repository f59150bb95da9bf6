"""The stage contract: what the engine needs from whatever moves a task's files (the filer).

The filer implements it; the engine and the runtimes only name it, so the engine never imports
the filer. A stage gets the task, the root of its volume (a TES path P is `<volume>/P`) and the
task's cancellation, which it checks between files and while it moves data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tesk.engine.cancellation import Cancellation
from tesk.tes.models import FileType, OutputFileLog, Task


@dataclass(frozen=True)
class InputsStaged:
    input_types: tuple[FileType, ...]
    # (regular files, bytes) each input put into the volume, in order (a directory input counts
    # every file below it); empty when the stager does not measure.
    sizes: tuple[tuple[int, int], ...] = ()

    @property
    def files(self) -> int:
        return sum(files for files, _ in self.sizes)

    @property
    def bytes(self) -> int:
        return sum(size for _, size in self.sizes)


@dataclass(frozen=True)
class OutputsStaged:
    outputs: tuple[OutputFileLog, ...]
    errors: tuple[str, ...] = ()  # outputs that could not be uploaded, one line each


class StageError(Exception):
    """A stage failed (missing input, unreachable storage); the message names URL and why."""


class Stager(Protocol):
    def stage_inputs(self, task: Task, volume_root: Path, cancel: Cancellation) -> InputsStaged:
        """Put every input into the volume. Raises StageError, or Cancelled once cancelled."""

    def stage_outputs(
        self, task: Task, volume_root: Path, executors_failed: bool, cancel: Cancellation
    ) -> OutputsStaged:
        """Upload the outputs found in the volume; with `executors_failed`, missing outputs are
        no error. Raises StageError, or Cancelled once cancelled."""
