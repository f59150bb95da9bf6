"""An executor's live output on this machine: the file its stdout or stderr is written to.

The runtime (runtime.py `_stream`) sends each stream to `<task dir>/logs/<index>.<stream>`, or to
the file the executor names (a TES path in the task volume). API workers open that file once it
exists and keep it open: the task directory is removed when the task ends, and an open file stays
readable until it is closed.

A file the executor names lies in the task volume, which the executor may change at will: it
could put a symbolic link or a FIFO there. Only a regular file whose real path (as the kernel
opened it) is still inside the task directory is read, so no host file is ever served.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tesk.backends.base import OutputStream
from tesk.backends.local.layout import TaskDir
from tesk.engine.volumes import host_path
from tesk.tes.models import Executor


def output_path(task_dir: TaskDir, index: int, executor: Executor, stream: OutputStream) -> Path:
    """Where the runtime writes `stream` of executor `index` (as runtime.py `_stream` does)."""
    named = executor.stdout if stream == "stdout" else executor.stderr
    if not named:
        return task_dir.logs / f"{index}.{stream}"
    return host_path(task_dir.volume, named)


class FileOutput:
    """ExecutorOutput of one file, opened on first sight and kept open until `close()`."""

    def __init__(self, path: Path, within: Path) -> None:
        self._path = path
        self._within = within
        self._fd: int | None = None

    def available(self) -> bool:
        if self._fd is None:
            self._fd = _open_inside(self._path, self._within)
        return self._fd is not None

    def size(self) -> int:
        if not self.available() or self._fd is None:
            return 0
        return os.fstat(self._fd).st_size

    def read(self, offset: int, limit: int) -> bytes:
        if limit <= 0 or not self.available() or self._fd is None:
            return b""
        return os.pread(self._fd, limit, offset)

    def complete(self) -> bool:
        # A file does not say whether its writer has ended; the store does (tesk/logs).
        return False

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _open_inside(path: Path, root: Path) -> int | None:
    """A descriptor of `path` for reading if it is a regular file inside `root`, else None."""
    try:
        # O_NONBLOCK: opening a FIFO would otherwise wait for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        real = os.readlink(f"/proc/self/fd/{fd}")
        if not stat.S_ISREG(os.fstat(fd).st_mode) or not _inside(real, root):
            os.close(fd)
            return None
    except OSError:
        os.close(fd)
        return None
    return fd


def _inside(real: str, root: Path) -> bool:
    try:
        base = os.path.realpath(root)
    except OSError:
        return False
    return real.startswith(base.rstrip("/") + "/")
