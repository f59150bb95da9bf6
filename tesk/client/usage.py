"""The usage block of `tesk get`: what each attempt of a task used, from its TaskLog metadata.

The server reports the `usage.*` keys of docs/usage.md; a figure it did not measure is absent,
and so is its line here. Pure: a task document in, lines of text out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_EXECUTOR_KEY = re.compile(r"usage\.executor\.(\d+)\.(cpu_seconds|peak_memory_bytes)")
_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def usage_lines(task: Mapping[str, Any]) -> list[str]:
    """The usage block of a task: a heading per attempt, then one line per figure."""
    logs = [log for log in task.get("logs") or [] if isinstance(log, Mapping)]
    if not logs:
        return ["usage: none reported yet (no attempt has started, or the view has no logs)"]
    lines: list[str] = []
    for number, log in enumerate(logs, start=1):
        metadata = log.get("metadata") or {}
        heading = f"usage, attempt {number} of {len(logs)}:" if len(logs) > 1 else "usage:"
        figures = attempt_figures(metadata if isinstance(metadata, Mapping) else {})
        lines.append(heading if figures else f"{heading} none reported")
        width = max((len(label) for label, _ in figures), default=0)
        lines += [f"  {label.ljust(width)}  {value}" for label, value in figures]
    return lines


def attempt_figures(metadata: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, value) of every usage figure of one attempt's metadata, in a fixed order."""

    def get(key: str) -> str | None:
        value = metadata.get(key)
        return None if value is None else str(value)

    figures: list[tuple[str, str]] = []
    for label, key in (("wall", "usage.wall_seconds"), ("queued", "usage.queued_seconds")):
        if (value := get(key)) is not None:
            figures.append((label, seconds(value)))
    if (cpu := get("usage.cpu_seconds")) is not None:
        figures.append(("cpu", seconds(cpu)))
    if (peak := get("usage.peak_memory_bytes")) is not None:
        figures.append(("peak memory", size(peak)))
    for direction in ("in", "out"):
        files = get(f"usage.files_staged_{direction}")
        size_ = get(f"usage.bytes_staged_{direction}")
        if files is not None or size_ is not None:
            parts = [] if files is None else [f"{files} {'file' if files == '1' else 'files'}"]
            parts += [] if size_ is None else [size(size_)]
            figures.append((f"staged {direction}", ", ".join(parts)))
    if (cost := get("usage.cost_usd")) is not None:
        price = get("vm_price_per_hour_usd")
        figures.append(("cost", f"{cost} USD" + (f" ({price} USD/h)" if price else "")))
    for index, measured in sorted(_executors(metadata).items()):
        parts = []
        if "cpu_seconds" in measured:
            parts.append(f"cpu {seconds(measured['cpu_seconds'])}")
        if "peak_memory_bytes" in measured:
            parts.append(f"peak memory {size(measured['peak_memory_bytes'])}")
        figures.append((f"executor {index}", ", ".join(parts)))
    return figures


def seconds(value: str) -> str:
    return f"{value} s"


def size(value: str) -> str:
    """Bytes as the server sent them, with a binary multiple when that reads easier."""
    try:
        number = float(value)
    except ValueError:
        return value
    unit = 0
    scaled = number
    while scaled >= 1024 and unit < len(_UNITS) - 1:
        scaled /= 1024
        unit += 1
    if unit == 0:
        return f"{value} B"
    return f"{scaled:.1f} {_UNITS[unit]} ({value} bytes)"


def _executors(metadata: Mapping[str, Any]) -> dict[int, dict[str, str]]:
    found: dict[int, dict[str, str]] = {}
    for key, value in metadata.items():
        match = _EXECUTOR_KEY.fullmatch(str(key))
        if match:
            found.setdefault(int(match[1]), {})[match[2]] = str(value)
    return found
