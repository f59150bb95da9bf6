"""Where a task's files live: the directories of the task volume and their paths on the host.

Every TES path a task names (inputs, outputs, volumes) lies in one of the task's mount points. The
volume holds each mount point at the same relative path (`/data/x` is `<volume>/data/x`), so the
filer and every executor see the same files, whether the volume is a local directory bind-mounted
into containers or a Kubernetes PVC mounted with subPaths.
"""

from __future__ import annotations

import posixpath
from pathlib import Path

from tesk.tes.models import FileType, Input, Output, Task
from tesk.tes.validation import has_glob


def _static_dir(path: str) -> str:
    """The deepest directory of `path` before its first wildcard component."""
    parts = path.split("/")
    for i, part in enumerate(parts):
        if has_glob(part):
            return "/".join(parts[:i]) or "/"
    return posixpath.dirname(path) or "/"


def mount_points(task: Task) -> list[str]:
    """The directories to share between filer and executors, none nested in another, sorted."""
    wanted: set[str] = set(task.volumes or [])
    files: list[Input | Output] = [*(task.inputs or []), *(task.outputs or [])]
    for item in files:
        path = posixpath.normpath(item.path)
        if item.type == FileType.DIRECTORY and not has_glob(path):
            wanted.add(path)
        else:
            wanted.add(_static_dir(path))
    for executor in task.executors:
        for stream in (executor.stdout, executor.stderr):
            if stream:
                wanted.add(posixpath.dirname(posixpath.normpath(stream)))
    points = sorted(posixpath.normpath(p) for p in wanted)
    return [p for p in points if not any(within(p, other) for other in points if other != p)]


def within(path: str, ancestor: str) -> bool:
    """Whether the TES path `path` is `ancestor` or lies below it (both normalised)."""
    return path == ancestor or path.startswith(ancestor.rstrip("/") + "/")


def host_path(volume_root: Path, container_path: str) -> Path:
    """The place of a TES path inside the task volume."""
    relative = posixpath.normpath(container_path).lstrip("/")
    if relative.startswith(".."):
        raise ValueError(f"path {container_path!r} leaves the task volume")
    return volume_root / relative
