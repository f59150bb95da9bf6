"""What a podman container used, from the cgroup TESK gives it as parent.

A container runs below podman's processes, not below TESK, so `wait4` sees nothing of it (bwrap's
way, bwrap.py). With podman's cgroupfs manager (podman as root without systemd: no systemd
slices), `--cgroup-parent=/tesk/<container>` makes podman create the container's cgroup, and that
of its monitor (`conmon`), below a parent of TESK's own. The kernel keeps counting into the
parent after the container's cgroup is gone, so once `podman run --rm` has returned TESK reads:

- CPU time: cgroup v2 `cpu.stat` usage_usec, v1 `cpuacct.usage`, less what `conmon` used;
- peak memory: v2 `memory.peak` (Linux 5.19 and later), v1 `memory.max_usage_in_bytes`: the
  high-water mark of the container with its monitor (a few MiB), page cache included;

and then removes the parent. What the node does not offer is left out.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from tesk.engine.usage import ExecutorUsage

ROOT = Path("/sys/fs/cgroup")
PARENT = "tesk"
MONITOR = "conmon"


@dataclass(frozen=True)
class ContainerCgroup:
    """The parent cgroup of one container, named after it (`tesk/<container name>`)."""

    container: str
    root: Path = ROOT

    @property
    def parent(self) -> str:
        """The value of `--cgroup-parent`."""
        return f"/{PARENT}/{self.container}"

    def usage(self) -> ExecutorUsage | None:
        unified = self.root / PARENT / self.container
        if (unified / "cpu.stat").is_file():
            cpu = _usage_usec(unified / "cpu.stat")
            if cpu is None:
                return None
            monitor = _usage_usec(unified / MONITOR / "cpu.stat") or 0
            peak = _number(unified / "memory.peak")
            return ExecutorUsage(max(0, cpu - monitor) / 1e6, peak)
        cpuacct = self._v1("cpuacct")
        if cpuacct is None:
            return None
        used_ns = _number(cpuacct / "cpuacct.usage")
        if used_ns is None:
            return None
        monitor_ns = _number(cpuacct / MONITOR / "cpuacct.usage") or 0
        memory = self._v1("memory")
        peak = _number(memory / "memory.max_usage_in_bytes") if memory is not None else None
        return ExecutorUsage(max(0, used_ns - monitor_ns) / 1e9, peak)

    def remove(self) -> None:
        """Remove the parent (and what is left below it) in every hierarchy it was made in."""
        for hierarchy in [self.root, *self._hierarchies()]:
            _remove_tree(hierarchy / PARENT / self.container)

    def _v1(self, controller: str) -> Path | None:
        """The parent's directory in the v1 hierarchy holding `controller` (`cpuacct` may be
        mounted alone or as `cpu,cpuacct`)."""
        for hierarchy in self._hierarchies():
            if controller in hierarchy.name.split(","):
                found = hierarchy / PARENT / self.container
                if found.is_dir():
                    return found
        return None

    def _hierarchies(self) -> list[Path]:
        try:
            return [p for p in self.root.iterdir() if p.is_dir() and not p.is_symlink()]
        except OSError:
            return []


def usable(root: Path = ROOT) -> bool:
    """Whether TESK may make cgroups here: as root, with a cgroup file system mounted."""
    return os.geteuid() == 0 and root.is_dir() and os.access(root, os.W_OK | os.X_OK)


def _usage_usec(stat: Path) -> int | None:
    try:
        for line in stat.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "usage_usec" and value.strip().isdigit():
                return int(value)
    except OSError:
        return None
    return None


def _number(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _remove_tree(directory: Path) -> None:
    """rmdir a cgroup and the cgroups below it, deepest first (their files cannot be removed:
    they go with their directory)."""
    if not directory.is_dir():
        return
    for below, _dirs, _files in sorted(os.walk(directory), key=lambda w: -len(w[0])):
        with contextlib.suppress(OSError):  # busy (a process left in it): a later run retries
            os.rmdir(below)
