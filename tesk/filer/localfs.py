"""Local file system helpers: finished-or-absent downloads, tree walks and containment checks."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tesk.engine.cancellation import Cancellation
from tesk.filer.urls import safe_relative

PARTIAL_PREFIX = ".tesk-partial-"
COPY_RANGE_BYTES = 1 << 28  # a cancel is seen between ranges: a fraction of a second each
_NO_COPY_RANGE = frozenset({errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EPERM})


def new_partial(dest: Path) -> Path:
    """An empty hidden temporary file beside `dest`, to be renamed into place by `commit`."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=PARTIAL_PREFIX, dir=dest.parent)
    os.close(fd)
    return Path(name)


def commit(temporary: Path, dest: Path) -> None:
    os.chmod(temporary, 0o644)  # mkstemp makes 0600; executors may run as another user
    os.replace(temporary, dest)


@contextlib.contextmanager
def partial_file(dest: Path) -> Iterator[Path]:
    """A temporary path beside `dest` that becomes `dest` only when the block ends without error.

    Whoever looks at `dest` sees nothing or the complete file, never a half-written one: the data is
    written under a hidden temporary name in the same directory and renamed into place at the end.
    On failure the temporary file is removed.
    """
    temporary = new_partial(dest)
    try:
        yield temporary
        commit(temporary, dest)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def copy_file(src: Path, dest: Path, cancel: Cancellation) -> None:
    """Copy `src` to `dest` inside the kernel (copy_file_range), else through shutil.

    copy_file_range lets the file system share or copy blocks without passing them through
    user space; shutil (sendfile) is the fallback across file systems that refuse it. A cancel
    stops the copy after the range under way.
    """
    with src.open("rb") as source, dest.open("wb") as target:
        try:
            while os.copy_file_range(source.fileno(), target.fileno(), COPY_RANGE_BYTES):
                cancel.check()
            return
        except OSError as error:
            if error.errno not in _NO_COPY_RANGE:
                raise
    shutil.copyfile(src, dest)  # starts over: it truncates `dest`


def measure(path: Path) -> tuple[int, int]:
    """(files, bytes) of a file or directory tree as it lies on disk; symlinks are not followed."""
    try:
        info = path.lstat()
    except OSError:
        return 0, 0
    if not stat.S_ISDIR(info.st_mode):
        return 1, info.st_size
    files = size = 0
    for root, _dirs, names in os.walk(path):
        for name in names:
            try:
                entry = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            files += 1
            size += entry.st_size
    return files, size


def is_within(path: Path, root: Path) -> bool:
    """Whether `path` is `root` or lies below it (both taken as they are; resolve them first)."""
    return path == root or root in path.parents


def resolved(path: Path) -> Path:
    """`path` with every symlink of its existing part resolved (the rest kept as written)."""
    return Path(os.path.realpath(path))


def local_files(root: Path) -> list[tuple[str, Path]]:
    """Every regular file below `root` as (relative POSIX path, path), sorted by relative path.

    Symlinks are followed (a tree may link to files elsewhere: callers check where they lead);
    a directory reached twice through links is walked once, so link cycles end.
    """
    return _tree(root)[0]


def local_directories(root: Path) -> list[str]:
    """Every directory below `root` (relative POSIX paths, parents first), links followed once."""
    return _tree(root)[1]


def _tree(root: Path) -> tuple[list[tuple[str, Path]], list[str]]:
    files: list[tuple[str, Path]] = []
    directories: list[str] = []
    seen: set[Path] = set()

    def walk(directory: Path, prefix: str) -> None:
        real = resolved(directory)
        if real in seen:
            return
        seen.add(real)
        with os.scandir(directory) as entries:
            children = sorted(entries, key=lambda entry: entry.name)
        for entry in children:
            relative = f"{prefix}{entry.name}"
            if entry.is_dir(follow_symlinks=True):
                directories.append(relative)
                walk(Path(entry.path), relative + "/")
            elif entry.is_file(follow_symlinks=True) and not entry.name.startswith(PARTIAL_PREFIX):
                files.append((relative, Path(entry.path)))

    walk(root, "")
    return files, directories


def destination(directory: Path, remote_name: str) -> Path:
    """Where a file a remote listing calls `remote_name` lands below `directory`.

    Raises ValueError when the name would leave `directory`.
    """
    return directory / safe_relative(remote_name)
