"""Helpers shared by the benchmarks."""

from __future__ import annotations

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
