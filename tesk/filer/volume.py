"""TES paths inside a task volume, seen as the task's containers see them.

The volume holds every mount point at its own relative path (`/data/x` is `<volume>/data/x`, as
in `tesk.engine.volumes`, which the filer may not import). Executors may leave symlinks
behind; a link's target means what it means inside the container, so links are resolved with the
volume as the root directory: `/data/in/a` in a link leads to `<volume>/data/in/a`, and `..`
stops at the volume's root. Nothing an executor writes can make the filer read or write a host
file outside the volume.
"""

from __future__ import annotations

import os
import posixpath
from collections import deque
from fnmatch import fnmatchcase
from pathlib import Path

from tesk.filer.localfs import PARTIAL_PREFIX
from tesk.tes.validation import has_glob

MAX_LINKS = 40  # as Linux's limit of symlinks followed in one path lookup


def tes_join(directory: str, relative: str) -> str:
    return posixpath.join(directory, relative) if relative else directory


def _components(path: str) -> list[str]:
    return [part for part in path.split("/") if part not in ("", ".")]


def resolve(volume_root: Path, tes_path: str) -> Path:
    """The host path of `tes_path`, with symlinks resolved inside the volume (see module doc).

    The result contains no symlink in its existing part; the rest (not there yet) is kept as
    written. Raises ValueError for link loops.
    """
    root = Path(os.path.realpath(volume_root))
    pending = deque(_components(tes_path))
    current: list[str] = []
    links = 0
    while pending:
        part = pending.popleft()
        if part == "..":
            if current:
                current.pop()
            continue
        candidate = root.joinpath(*current, part)
        if candidate.is_symlink():
            links += 1
            if links > MAX_LINKS:
                raise ValueError(f"{tes_path}: too many levels of symbolic links")
            target = os.readlink(candidate)
            if target.startswith("/"):
                current = []
            pending.extendleft(reversed(_components(target)))
        else:
            current.append(part)
    return root.joinpath(*current)


def files_below(volume_root: Path, tes_dir: str) -> list[tuple[str, Path]]:
    """Every regular file below the TES directory `tes_dir`, as (relative path, host path).

    Sorted by relative path; links are resolved inside the volume and a directory reached twice
    is listed once, so link cycles end.
    """
    found: list[tuple[str, Path]] = []
    seen: set[Path] = set()

    def walk(tes_path: str, prefix: str) -> None:
        host = resolve(volume_root, tes_path)
        if host in seen:
            return
        seen.add(host)
        for name in sorted(os.listdir(host)):
            if name.startswith(PARTIAL_PREFIX):
                continue
            child = tes_join(tes_path, name)
            child_host = resolve(volume_root, child)
            if child_host.is_dir():
                walk(child, f"{prefix}{name}/")
            elif child_host.is_file():
                found.append((f"{prefix}{name}", child_host))

    walk(posixpath.normpath(tes_dir), "")
    return found


def expand_glob(volume_root: Path, pattern: str) -> list[str]:
    """The TES paths matching the POSIX wildcard `pattern` (`*`, `?`, `[...]`), sorted.

    As in a POSIX shell, a wildcard never matches `/`, and names starting with `.` match only a
    pattern component that starts with `.` too.
    """
    matches = ["/"]
    for component in _components(posixpath.normpath(pattern)):
        following: list[str] = []
        for base in matches:
            if not has_glob(component):
                candidate = tes_join(base, component)
                if os.path.lexists(resolve(volume_root, candidate)):
                    following.append(candidate)
                continue
            directory = resolve(volume_root, base)
            if not directory.is_dir():
                continue
            for name in sorted(os.listdir(directory)):
                hidden = name.startswith(".") and not component.startswith(".")
                if not hidden and fnmatchcase(name, component):
                    following.append(tes_join(base, name))
        matches = following
    return sorted(match for match in matches if match != "/")
