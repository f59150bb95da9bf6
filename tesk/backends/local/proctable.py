"""Finding processes by their command line, for what process groups and pdeathsig miss."""

from __future__ import annotations

import contextlib
import os
import signal


def pids_with(token: bytes) -> list[int]:
    """Pids of live processes (other than this one) whose command line contains `token`."""
    own = os.getpid()
    found: list[int] = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == own:
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as stream:
                if token in stream.read():
                    found.append(int(name))
        except OSError:
            continue
    return found


def kill_with(token: bytes) -> int:
    """SIGKILL every process whose command line contains `token`; how many were found."""
    pids = pids_with(token)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return len(pids)
