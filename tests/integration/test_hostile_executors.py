"""Executors of the local backend as an attacker would write them: as root? on the network?

Executors really run (bwrap, and podman where TESK_TEST_PODMAN_IMAGE names a local image); the
memory store and the fake stager stand in for SQL and the filer.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tesk.backends.local.launcher import NOBODY, unreachable_for
from tesk.tes.states import TERMINAL, State
from tests.integration.test_local_backend import PODMAN_IMAGE, Harness

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bwrap not installed")

AS_ROOT = os.geteuid() == 0


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    # Not under /tmp (every sandbox has its own), and traversable by others, as a data dir such
    # as /var/lib/tesk is.
    data_root = Path(tempfile.mkdtemp(prefix="tesk-hostile-", dir="/var/tmp"))
    data_root.chmod(0o711)
    harness = Harness(data_root, tmp_path)
    yield harness
    for backend in harness.backends:
        backend.stop()
    shutil.rmtree(data_root, ignore_errors=True)


def run(harness: Harness, script: str, **local: object) -> tuple[State, str, str]:
    backend = harness.backend(**local)
    task_id = harness.submit(backend, script)
    record = harness.wait(task_id, TERMINAL)
    assert record.log is not None
    assert record.log.logs, record.log
    executor = record.log.logs[0]
    return record.state, executor.stdout or "", executor.stderr or ""


def test_executors_never_run_as_root(harness: Harness) -> None:
    state, out, err = run(
        harness,
        "id -u; id -g; touch /etc/tesk-escape 2>/dev/null && echo wrote-etc; "
        "cat /etc/shadow >/dev/null 2>&1 && echo read-shadow; echo ok > /tmp/x && cat /tmp/x",
    )
    assert state is State.COMPLETE, err
    lines = out.split()
    assert "0" not in lines[:2]
    if AS_ROOT:
        assert lines[:2] == [str(NOBODY.uid), str(NOBODY.gid)]
    assert "wrote-etc" not in lines
    assert "read-shadow" not in lines
    assert lines[-1] == "ok"
    assert not Path("/etc/tesk-escape").exists()


@pytest.mark.skipif(not AS_ROOT, reason="only root can run executors as another user")
def test_a_configured_executor_user_is_used(harness: Harness) -> None:
    state, out, err = run(harness, "id -u; id -g", executor_user="12345:23456")
    assert state is State.COMPLETE, err
    assert out.split() == ["12345", "23456"]


@pytest.mark.skipif(not AS_ROOT, reason="TESK as non-root never runs executors as root")
def test_a_data_dir_nobody_can_reach_falls_back_to_root_loudly(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    harness.data_root.chmod(0o700)
    assert unreachable_for(harness.data_root, NOBODY) == harness.data_root
    with caplog.at_level(logging.WARNING):
        state, out, _ = run(harness, "id -u")
    assert (state, out.strip()) == (State.COMPLETE, "0")
    assert any("executors run as root" in r.getMessage() for r in caplog.records)


@pytest.fixture
def listener() -> Iterator[int]:
    """A TCP server on 127.0.0.1 that accepts and closes connections; yields its port."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(timeout=5)
    server.close()


def connect_script(port: int) -> str:
    # bash's /dev/tcp: the host's bash is in every bwrap sandbox.
    return f"bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}' && echo connected"


@pytest.mark.parametrize(("network", "reached"), [("default", True), ("none", False)])
def test_network_none_cuts_executors_off(
    harness: Harness, listener: int, network: str, reached: bool
) -> None:
    state, out, err = run(harness, connect_script(listener), network=network)
    if reached:
        assert (state, out.strip()) == (State.COMPLETE, "connected"), err
    else:
        assert state is State.EXECUTOR_ERROR
        assert "connected" not in out
        assert "Network is unreachable" in err or "Connection refused" in err, err


@pytest.mark.podman
@pytest.mark.skipif(PODMAN_IMAGE is None, reason="TESK_TEST_PODMAN_IMAGE not set")
@pytest.mark.parametrize("network", ["default", "none"])
def test_podman_executors_are_not_root_and_network_none_holds(
    harness: Harness, network: str
) -> None:
    backend = harness.backend(runtime="podman", network=network)
    script = "id -u; cat /sys/class/net/*/operstate 2>/dev/null | tr '\\n' ' '; ls /sys/class/net"
    record = harness.record(script)
    record.task.executors[0].image = PODMAN_IMAGE or ""
    harness.store.create(record)
    backend.submit(record)
    done = harness.wait(record.id, TERMINAL, timeout=60)
    assert done.state is State.COMPLETE, done.log
    assert done.log is not None
    out = done.log.logs[0].stdout or ""
    assert out.split()[0] != "0"
    interfaces = set(out.split()[1:]) - {"up", "down", "unknown"}
    if network == "none":
        assert interfaces == {"lo"}
    else:
        assert interfaces - {"lo"}
