"""The run-time limit of a task's executors: a backend parameter every backend takes.

`resources.backend_parameters.max_runtime_seconds` (a whole number from 1) bounds how long each
executor of the task may run; the server's `limits.max_runtime_seconds` applies to tasks that set
none. An executor that runs longer is stopped and the task ends EXECUTOR_ERROR.
"""

from __future__ import annotations

from collections.abc import Mapping

MAX_RUNTIME = "max_runtime_seconds"
LARGEST = 10**9


def whole_number(key: str, value: str) -> int:
    """The whole number from 1 to LARGEST that backend parameter `key` spells; ValueError saying
    what is wrong."""
    text = value.strip()
    if not text.isdigit() or not 1 <= int(text) <= LARGEST:
        raise ValueError(f"{key}: {value!r} is not a whole number from 1 to {LARGEST}")
    return int(text)


def parse_max_runtime(value: str) -> int:
    """The limit `value` spells; ValueError saying what is wrong."""
    return whole_number(MAX_RUNTIME, value)


def max_runtime(parameters: Mapping[str, str] | None, default: int | None = None) -> int | None:
    """The limit a task's backend_parameters set (keys are case-insensitive), else `default`."""
    for key, value in (parameters or {}).items():
        if key.lower() == MAX_RUNTIME:
            return parse_max_runtime(value)
    return default
