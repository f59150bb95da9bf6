"""Wake-up hints: datagrams from API processes to the runner's socket."""

from __future__ import annotations

import queue
import threading
from pathlib import Path

from tesk.backends.local.wakeup import Listener, SocketWakeups, socket_address


def test_hints_from_several_threads_reach_the_runner_on_one_socket(tmp_path: Path) -> None:
    address = socket_address(tmp_path, tmp_path / "runner.sock")
    received: queue.Queue[str] = queue.Queue()
    listener = Listener(address, received.put)
    listener.start()
    try:
        wakeups = SocketWakeups(address)
        sock = wakeups._sock
        senders = [threading.Thread(target=wakeups.task_queued, args=(f"t{i}",)) for i in range(8)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join(5)
        wakeups.task_canceling("t9")
        got = {received.get(timeout=5) for _ in range(9)}
    finally:
        listener.close()
    assert got == {*(f"queued t{i}" for i in range(8)), "cancel t9"}
    assert wakeups._sock is sock  # one socket for every hint, kept open for the next
    assert sock.fileno() != -1


def test_a_hint_nobody_listens_to_is_dropped_quietly(tmp_path: Path) -> None:
    wakeups = SocketWakeups(str(tmp_path / "nobody.sock"))
    wakeups.task_queued("t1")  # no runner: the hint is lost, the create is not
    wakeups.task_queued("t2")
