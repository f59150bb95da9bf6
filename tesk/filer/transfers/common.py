"""What every transfer shares: directory uploads built from single-file uploads, error reasons."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tesk.engine.cancellation import Cancellation
from tesk.filer.base import PartialUploadError, TransferError
from tesk.filer.localfs import local_files
from tesk.filer.urls import join_url

# Size of one socket read or write when streaming. Measured on loopback: 1 MiB reads run about
# four times faster than 8 MiB ones (which urllib3 assembles from many small reads), and much
# larger blocks only cost memory.
STREAM_BYTES = 1024 * 1024


def stream_block(chunk_bytes: int) -> int:
    return min(chunk_bytes, STREAM_BYTES)


class TransferBase:
    """Directory uploads as one upload_file per file; transfers with sessions override it.

    `cancel` is the cancellation of the stage the transfer serves: every transfer checks it
    between files and while it moves data.
    """

    cancel: Cancellation

    def upload_file(self, src: Path, url: str) -> None:
        raise NotImplementedError

    def upload_directory(
        self, src: Path, url: str, files: Sequence[tuple[str, Path]] | None = None
    ) -> list[tuple[str, Path]]:
        uploaded: list[tuple[str, Path]] = []
        for relative, path in local_files(src) if files is None else files:
            target = join_url(url, relative)
            try:
                self.cancel.check()
                self.upload_file(path, target)
            except TransferError as error:
                raise PartialUploadError(str(error), uploaded) from error
            uploaded.append((target, path))
        return uploaded


def os_reason(error: BaseException) -> str:
    """The most telling operating-system reason in an exception chain, else the class name.

    Library messages often quote the full request URL (and with it pre-signed query secrets),
    so transfers describe connection failures through this instead of str(error).
    """
    seen: set[int] = set()
    current: BaseException | None = error
    innermost: OSError | None = None
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            innermost = current
        nested = getattr(current, "reason", None)  # urllib3 MaxRetryError keeps it here
        if isinstance(nested, BaseException):
            current = nested
            continue
        arg = next((a for a in current.args if isinstance(a, BaseException)), None)
        current = arg or current.__cause__ or current.__context__
    if innermost is not None:
        return str(innermost.strerror).lower()
    return type(error).__name__
