"""Starting, finding and stopping the cluster's programs: detached processes with pid files and
log files under the cluster's state directory."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from .components import Component
from .layout import NETNS, REPO, Layout


def _pid_file(layout: Layout, name: str) -> Path:
    return layout.pids / f"{name}.pid"


def pid_of(layout: Layout, name: str) -> int | None:
    """The pid of a running component, or None (a stale pid file does not count)."""
    try:
        pid = int(_pid_file(layout, name).read_text())
        marker = _pid_file(layout, name).with_suffix(".cmd").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (OSError, ValueError):
        return None
    return pid if cmdline.startswith(marker) else None


def start(layout: Layout, component: Component) -> int:
    layout.pids.mkdir(parents=True, exist_ok=True)
    layout.logs.mkdir(parents=True, exist_ok=True)
    argv = component.argv
    if component.in_netns:
        # nsenter only changes the network namespace: the kubelet, containerd and the pods must
        # share the host's mount namespace (`ip netns exec` would give each its own).
        argv = ["nsenter", f"--net=/run/netns/{NETNS}", "--", *argv]
    env = dict(os.environ)
    env.update(component.env)
    env["PYTHONPATH"] = str(REPO)
    with (layout.logs / f"{component.name}.log").open("ab") as log:
        process = subprocess.Popen(
            argv,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _pid_file(layout, component.name).write_text(str(process.pid))
    # nsenter execs the program, so the pid stays; its command line starts with the program.
    _pid_file(layout, component.name).with_suffix(".cmd").write_text(" ".join(component.argv[:1]))
    return process.pid


def stop(layout: Layout, name: str, timeout: float = 10.0) -> None:
    pid = pid_of(layout, name)
    if pid is not None:
        kill_and_wait([pid], timeout)
    _pid_file(layout, name).unlink(missing_ok=True)


def kill_and_wait(pids: list[int], timeout: float = 10.0) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    end = time.monotonic() + timeout
    alive = list(pids)
    while alive and time.monotonic() < end:
        alive = [pid for pid in alive if _alive(pid)]
        time.sleep(0.1)
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def pids_matching(text: str) -> list[int]:
    """Processes whose command line contains `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline:
            found.append(int(entry.name))
    return found


def pause(layout: Layout, name: str) -> None:
    """Freezes a component (SIGSTOP): it holds its sockets but answers nothing, as a hung node."""
    pid = pid_of(layout, name)
    if pid is None:
        raise RuntimeError(f"{name} is not running")
    os.kill(pid, signal.SIGSTOP)


def resume(layout: Layout, name: str) -> None:
    pid = pid_of(layout, name)
    if pid is None:
        raise RuntimeError(f"{name} is not running")
    os.kill(pid, signal.SIGCONT)
