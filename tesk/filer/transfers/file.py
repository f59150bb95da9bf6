"""file:// transfers, confined to the configured file roots.

A URL must name a path below one of the roots, both as written (no `..`) and after resolving
symlinks, so a link inside a root cannot expose the rest of the host. Copies use the kernel's
copy path (sendfile) and never hold a file in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from tesk.engine.cancellation import Cancellation
from tesk.filer.base import TransferError
from tesk.filer.localfs import (
    copy_file,
    destination,
    is_within,
    local_directories,
    local_files,
    partial_file,
    resolved,
)
from tesk.filer.transfers.common import TransferBase
from tesk.filer.urls import redact


def file_url_path(url: str, roots: Sequence[Path]) -> Path:
    """The local path a file:// URL names, checked as written against `roots`.

    Raises ValueError saying what is wrong. Symlinks are checked when transferring (see
    FileTransfer), since the API may run on another machine than the filer.
    """
    parts = urlsplit(url)
    if parts.scheme.lower() != "file":
        raise ValueError(f"{redact(url)} is not a file:// URL")
    if parts.netloc not in ("", "localhost"):
        raise ValueError(f"{redact(url)}: file:// URLs must name a local path (file:///path)")
    raw = unquote(parts.path)
    if not raw.startswith("/"):
        raise ValueError(f"{redact(url)}: file:// URLs need an absolute path")
    if "\x00" in raw:
        raise ValueError(f"{redact(url)}: the path holds a NUL byte")
    if ".." in PurePosixPath(raw).parts:
        raise ValueError(f"{redact(url)}: '..' is not allowed in file:// paths")
    if not roots:
        raise ValueError("file:// URLs are not allowed: no file roots are configured")
    path = Path(raw)
    if not any(is_within(path, Path(root).absolute()) for root in roots):
        allowed = ", ".join(str(root) for root in roots)
        raise ValueError(f"{redact(url)} lies outside the allowed file roots ({allowed})")
    return path


class FileTransfer(TransferBase):
    schemes: tuple[str, ...] = ("file",)

    def __init__(self, roots: Sequence[Path], cancel: Cancellation) -> None:
        self._roots = list(roots)
        self.cancel = cancel

    def _path(self, url: str) -> Path:
        """The checked path of `url` with its symlinks resolved; TransferError if it escapes."""
        try:
            path = file_url_path(url, self._roots)
        except ValueError as error:
            raise TransferError(str(error)) from error
        real = resolved(path)
        if not any(is_within(real, resolved(root)) for root in self._roots):
            raise TransferError(f"{redact(url)} leads outside the allowed file roots (symlink)")
        return real

    def _checked(self, url: str, path: Path) -> Path:
        real = resolved(path)
        if not any(is_within(real, resolved(root)) for root in self._roots):
            raise TransferError(f"{redact(url)}: {path} leads outside the allowed file roots")
        return real

    def download_file(self, url: str, dest: Path) -> None:
        src = self._path(url)
        if src.is_dir():
            raise TransferError(f"{redact(url)} is a directory, not a file")
        if not src.is_file():
            raise TransferError(f"{redact(url)}: not found")
        try:
            with partial_file(dest) as temporary:
                copy_file(src, temporary, self.cancel)
        except OSError as error:
            raise TransferError(f"{redact(url)}: {error.strerror or error}") from error

    def download_directory(self, url: str, dest: Path) -> None:
        src = self._path(url)
        if not src.is_dir():
            reason = "is a file, not a directory" if src.exists() else "not found"
            raise TransferError(f"{redact(url)}: {reason}")
        try:
            # Check every link before copying anything: a refused tree leaves nothing behind.
            files = [(name, self._checked(url, path)) for name, path in local_files(src)]
            directories = local_directories(src)
            for name in directories:
                self._checked(url, src / name)
            dest.mkdir(parents=True, exist_ok=True)
            for name in directories:
                destination(dest, name).mkdir(parents=True, exist_ok=True)
            for name, path in files:
                self.cancel.check()
                with partial_file(destination(dest, name)) as temporary:
                    copy_file(path, temporary, self.cancel)
        except OSError as error:
            raise TransferError(f"{redact(url)}: {error.strerror or error}") from error

    def upload_file(self, src: Path, url: str) -> None:
        target = self._path(url)
        if target.is_dir():
            raise TransferError(f"{redact(url)} is a directory; cannot write a file there")
        try:
            with partial_file(target) as temporary:
                copy_file(src, temporary, self.cancel)
        except OSError as error:
            raise TransferError(f"{redact(url)}: {error.strerror or error}") from error

    def exists(self, url: str) -> bool:
        return self._path(url).exists()

    def is_directory(self, url: str) -> bool:
        path = self._path(url)
        if not path.exists():
            raise TransferError(f"{redact(url)}: not found")
        return path.is_dir()
