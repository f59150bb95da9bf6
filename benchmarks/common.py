"""Helpers shared by the benchmarks."""

from __future__ import annotations

import os
import platform
import socket
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_report(name: str, title: str, doc: str, lines: list[str]) -> Path:
    """Write the latest figures of one benchmark to docs/benchmarks/<name>.md."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.md"
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    path.write_text(
        f"# {title}\n\n{doc.strip()}\n\nLast run {when} on {platform.node()} "
        f"({platform.machine()}, Python {platform.python_version()}):\n\n" + "\n".join(lines) + "\n"
    )
    return path


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far, its own threads only.

    Children it waited for (executors, sandboxes) are not counted: /proc/<pid>/stat keeps them
    apart (cutime, cstime), so this is what the process itself costs.
    """
    user, system = cpu_times(pid)
    return user + system


def cpu_times(pid: int) -> tuple[float, float]:
    """User and system CPU seconds a process's own threads have used so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces and parentheses: count fields after its end.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) / _CLOCK_TICKS, int(fields[12]) / _CLOCK_TICKS


def cpu_of(pids: list[int]) -> tuple[float, float]:
    """User and system CPU seconds of `pids` together; a process that ended counts nothing."""
    user = system = 0.0
    for pid in pids:
        try:
            own_user, own_system = cpu_times(pid)
        except OSError:
            continue
        user += own_user
        system += own_system
    return user, system


def children(pid: int) -> list[int]:
    """The direct children of a process (Linux: /proc/<pid>/task/*/children)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    pending = [pid]
    while pending:
        kids = children(pending.pop())
        found += kids
        pending += kids
    return found
