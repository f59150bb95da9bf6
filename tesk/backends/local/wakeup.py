"""Wake-up hints from the local backend to the runner: datagrams between processes.

A hint only makes the runner look at the store now instead of at its next poll, so a lost,
duplicated or forged message changes nothing but timing. Two hints exist: a task was queued, and
a task was stored CANCELING. The socket lives in the data dir; when that path is too long for a
Unix socket address, an abstract name derived from it is used.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

logger = logging.getLogger(__name__)

_MAX_PATH = 100  # sun_path holds 108 bytes on Linux, fewer elsewhere
_MAX_MESSAGE = 512
_QUEUED = "queued"
_CANCELING = "cancel"


class Wakeups(Protocol):
    """Where the local backend sends its hints: the runner itself, or the socket to it."""

    def task_queued(self, task_id: str) -> None: ...

    def task_canceling(self, task_id: str) -> None: ...


class SocketWakeups:
    """Hints from an API process, by datagram to the runner's socket.

    One unbound socket serves every hint of the process (its threads may send at once: each
    datagram is one system call), instead of a socket opened and closed for every CreateTask.
    """

    def __init__(self, address: str) -> None:
        self._address = address
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setblocking(False)

    def task_queued(self, task_id: str) -> None:
        self._send(f"{_QUEUED} {task_id}")

    def task_canceling(self, task_id: str) -> None:
        self._send(f"{_CANCELING} {task_id}")

    def _send(self, message: str) -> None:
        """Best effort: nobody listening, or a full queue, only delays the runner until its poll."""
        try:
            self._sock.sendto(message.encode()[:_MAX_MESSAGE], self._address)
        except OSError as exc:
            logger.debug("wake-up %r not delivered to %r: %s", message, self._address, exc)


def deliver(message: str, to: Wakeups) -> None:
    """Pass one received datagram on as the hint it is (anything unknown: a task was queued)."""
    kind, _, task_id = message.partition(" ")
    if kind == _CANCELING and task_id:
        to.task_canceling(task_id)
    else:
        to.task_queued(task_id)


def socket_address(data_dir: Path, socket_path: Path) -> str:
    if len(os.fsencode(socket_path)) <= _MAX_PATH:
        return str(socket_path)
    digest = hashlib.sha256(os.fsencode(data_dir)).hexdigest()[:32]
    return f"\0tesk-runner-{digest}"


class Listener:
    """Receives datagrams in a thread and passes each to `on_message`."""

    def __init__(self, address: str, on_message: Callable[[str], None]) -> None:
        self._address = address
        self._on_message = on_message
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="tesk-wakeup", daemon=True)

    def start(self) -> None:
        if not self._address.startswith("\0"):
            # A socket file left by a dead runner; the data dir lock says none is alive.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._address)
        try:
            self._sock.bind(self._address)
        except OSError:
            self._sock.close()
            raise
        self._sock.settimeout(0.5)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                data = self._sock.recv(_MAX_MESSAGE)
            except TimeoutError:
                continue
            except OSError:
                if self._stopping.is_set():
                    return
                raise
            try:
                self._on_message(data.decode(errors="replace"))
            except Exception:
                logger.exception("handling wake-up %r failed", data)

    def close(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=2)
        self._sock.close()
        if not self._address.startswith("\0"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._address)
