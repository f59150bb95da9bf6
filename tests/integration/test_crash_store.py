"""The task store goes away under a live `tesk serve` (PostgreSQL behind a proxy the test cuts).

While the database cannot be reached, every TES call that needs it answers 503 with a message and
/readyz says so; nothing is half-written: a task is stored with its tags, or not at all, and the
client was told which. Once the database is back, TESK serves again without a restart.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import socket
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from benchmarks.load import create_tasks, postgres_schema
from benchmarks.served import ServedTesk, can_serve, free_port

POSTGRES_ENV = "TESK_TEST_POSTGRES_URL"

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not os.environ.get(POSTGRES_ENV), reason=f"{POSTGRES_ENV} is not set"),
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bwrap not installed"),
    pytest.mark.skipif(not can_serve(), reason="tesk serve needs the filer"),
]


class Proxy:
    """A TCP proxy on 127.0.0.1 to `target`; `cut()` drops every connection and refuses new ones."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._cut = False

    def open(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port))
        with self._lock:
            self._cut = False
        self._listener = listener
        self._thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._thread.start()

    def cut(self) -> None:
        assert self._listener is not None
        with self._lock:
            self._cut = True
        # shutdown wakes the thread blocked in accept(); close alone would let it accept once more.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._cut:
                    client.close()
                    upstream.close()
                    return
                self._sockets += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        selector.register(a, selectors.EVENT_READ, b)
        selector.register(b, selectors.EVENT_READ, a)
        try:
            while True:
                for key, _ in selector.select():
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        return
                    key.data.sendall(data)
        except OSError:
            return
        finally:
            selector.close()
            a.close()
            b.close()


@pytest.fixture
def through_proxy() -> Iterator[tuple[Proxy, str, sa.Engine]]:
    """A proxy to the test PostgreSQL, a store URL (a fresh schema) through it, a direct engine."""
    admin = os.environ[POSTGRES_ENV]
    with postgres_schema(admin) as direct_url:
        parsed = sa.make_url(direct_url)
        proxy = Proxy((parsed.host or "127.0.0.1", parsed.port or 5432))
        proxy.open()
        proxied = parsed.set(host="127.0.0.1", port=proxy.port)
        direct = sa.create_engine(parsed.set(drivername="postgresql+psycopg"))
        try:
            yield proxy, proxied.render_as_string(hide_password=False), direct
        finally:
            direct.dispose()
            with contextlib.suppress(OSError):
                proxy.cut()


def stored(direct: sa.Engine) -> tuple[set[str], set[str]]:
    """(ids in `tasks`, task ids in `task_tags`)."""
    with direct.connect() as conn:
        tasks = {row[0] for row in conn.execute(sa.text("SELECT id FROM tasks"))}
        tags = {row[0] for row in conn.execute(sa.text("SELECT task_id FROM task_tags"))}
    return tasks, tags


def test_a_store_gone_mid_run_answers_503_and_writes_nothing_half(
    through_proxy: tuple[Proxy, str, sa.Engine],
) -> None:
    proxy, store_url, direct = through_proxy
    root = Path(tempfile.mkdtemp(prefix="tesk-store-crash-", dir="/var/tmp"))
    root.chmod(0o711)
    server = ServedTesk(root / "data", store_url=store_url).start()
    run = uuid.uuid4().hex
    try:
        before = create_tasks(server.url, 50, 4, run)
        assert dict(before.statuses) == {200: 50}

        # Cut the database while clients are posting.
        during: dict[str, object] = {}
        posting = threading.Thread(
            target=lambda: during.update(result=create_tasks(server.url, 200, 8, run))
        )
        posting.start()
        proxy.cut()
        posting.join()
        result = during["result"]
        statuses = result.statuses  # type: ignore[attr-defined]
        assert set(statuses) <= {200, 503}, statuses

        body = {"executors": [{"image": "busybox", "command": ["true"]}], "tags": {"load": run}}
        refused = requests.post(f"{server.url}/tasks", json=body, timeout=60)
        assert refused.status_code == 503
        assert "task store is unavailable" in refused.json()["detail"]
        assert requests.get(f"{server.url}/tasks", timeout=60).status_code == 503
        ready = requests.get(f"http://127.0.0.1:{server.port}/readyz", timeout=60)
        assert ready.status_code == 503
        assert requests.get(f"http://127.0.0.1:{server.port}/healthz", timeout=60).ok

        # Nothing half-written: every task whose client got 200 exists, and every stored task has
        # its tag (one transaction). A 503 may hide a commit whose answer the cut swallowed.
        answered = set(before.ids) | set(result.ids)  # type: ignore[attr-defined]
        tasks, tagged = stored(direct)
        assert answered <= tasks
        assert tagged == tasks
        assert len(tasks - answered) <= statuses.get(503, 0)

        proxy.open()
        again = requests.post(f"{server.url}/tasks", json=body, timeout=60)
        assert again.status_code == 200, again.text
        assert requests.get(f"http://127.0.0.1:{server.port}/readyz", timeout=60).ok
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
