"""The Transfer contract: one implementation per URL scheme family."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tesk.tes.models import FileType, OutputFileLog


class TransferError(Exception):
    """A transfer failed for good; the message names the URL (no credentials) and the reason."""


class TransientTransferError(TransferError):
    """A transfer failed in a way worth retrying (reset connection, timeout, 5xx, throttling)."""


class Transfer(Protocol):
    schemes: tuple[str, ...]

    def download_file(self, url: str, dest: Path) -> None: ...

    def download_directory(self, url: str, dest: Path) -> None: ...

    def upload_file(self, src: Path, url: str) -> None: ...

    def upload_directory(self, src: Path, url: str) -> list[tuple[str, Path]]:
        """Upload a tree; return (url, local file) of every file uploaded."""

    def exists(self, url: str) -> bool: ...

    def is_directory(self, url: str) -> bool:
        """Whether `url` names a directory (for inputs whose type the client left out)."""


@dataclass(frozen=True)
class InputsStaged:
    input_types: tuple[FileType, ...]


@dataclass(frozen=True)
class OutputsStaged:
    outputs: tuple[OutputFileLog, ...]
    errors: tuple[str, ...] = ()  # outputs that could not be uploaded, one line each


class StageError(Exception):
    """A filer stage failed (missing input, unreachable storage); the message names URL and why."""
