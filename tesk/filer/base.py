"""The Transfer contract: one implementation per URL scheme family."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol


class TransferError(Exception):
    """A transfer failed for good; the message names the URL (no credentials) and the reason."""


class TransientTransferError(TransferError):
    """A transfer failed in a way worth retrying (reset connection, timeout, 5xx, throttling).

    retry_after: how long the server asked us to wait (HTTP Retry-After), if it said.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PartialUploadError(TransferError):
    """A directory upload stopped part-way; `uploaded` lists what reached the storage before."""

    def __init__(self, message: str, uploaded: list[tuple[str, Path]]) -> None:
        super().__init__(message)
        self.uploaded = uploaded


class Transfer(Protocol):
    schemes: tuple[str, ...]

    def download_file(self, url: str, dest: Path) -> None: ...

    def download_directory(self, url: str, dest: Path) -> None: ...

    def upload_file(self, src: Path, url: str) -> None: ...

    def upload_directory(
        self, src: Path, url: str, files: Sequence[tuple[str, Path]] | None = None
    ) -> list[tuple[str, Path]]:
        """Upload a tree; return (url, local file) of every file uploaded, in order.

        files: the (relative POSIX path, local file) pairs to upload below `url`; None means
        every file under `src`. Raises PartialUploadError (with what got through) on failure.
        """

    def exists(self, url: str) -> bool: ...

    def is_directory(self, url: str) -> bool:
        """Whether `url` names a directory (for inputs whose type the client left out)."""
