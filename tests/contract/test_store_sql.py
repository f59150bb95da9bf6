"""What only the SQL store does: configuration, URLs, SQLite settings, errors, rows, query plans."""

from __future__ import annotations

import socket
import sqlite3
import threading
from collections.abc import Callable
from contextlib import closing, suppress
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.pool import NullPool

from tesk.config import CustomConfig, StoreConfig
from tesk.store import database
from tesk.store.base import Cursor, StoreUnavailable, TaskQuery, TaskRecord
from tesk.store.database import parse_url
from tesk.store.listing import page
from tesk.store.schema import tasks
from tesk.store.sql import SqlStore
from tesk.tes.errors import InvalidRequest
from tesk.tes.models import TaskLog
from tesk.tes.progress import Progress
from tesk.tes.states import State
from tests.contract.conftest import make_record

# --- configuration and URLs -------------------------------------------------------------------


def test_the_default_store_is_a_wal_sqlite_file_in_the_data_dir(tmp_path: Path) -> None:
    custom = CustomConfig(data_dir=tmp_path / "missing" / "data")
    store = SqlStore.from_config(custom)
    store.create(make_record("t1", 1))
    store.close()

    path = tmp_path / "missing" / "data" / "tesk.db"
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    reopened = SqlStore.from_config(custom)
    try:
        assert reopened.get("t1") is not None
    finally:
        reopened.close()


def test_a_configured_url_is_used_instead_of_the_data_dir(tmp_path: Path) -> None:
    path = tmp_path / "elsewhere.db"
    custom = CustomConfig(
        data_dir=tmp_path / "unused", store=StoreConfig(url=f"sqlite:///{path}", pool_size=2)
    )

    SqlStore.from_config(custom).close()

    assert path.is_file()
    assert not (tmp_path / "unused").exists()


@pytest.mark.parametrize(
    "url",
    ["postgresql://u:p@db.example:5433/tesk", "postgres://u:p@db.example:5433/tesk"],
)
def test_postgresql_urls_use_the_psycopg3_driver(url: str) -> None:
    parsed = parse_url(url)
    assert parsed.drivername == "postgresql+psycopg"
    assert (parsed.host, parsed.port, parsed.database) == ("db.example", 5433, "tesk")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://tesk:s3cret@127.0.0.1/tesk", "unsupported store URL scheme 'mysql'"),
        ("tesk:s3cret@127.0.0.1/tesk", "cannot be parsed"),
        ("sqlite://", "in-memory"),
        ("sqlite:///:memory:", "in-memory"),
    ],
)
def test_bad_urls_are_refused_without_their_secrets(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        SqlStore(url)
    assert "s3cret" not in str(raised.value)


# --- unavailable databases ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_an_unreachable_postgresql_server_is_store_unavailable() -> None:
    port = _free_port()

    with pytest.raises(StoreUnavailable) as raised:
        SqlStore(f"postgresql://tesk:s3cret@127.0.0.1:{port}/tesk")

    message = str(raised.value)
    assert f"127.0.0.1:{port}" in message
    assert "s3cret" not in message
    assert "tesk:" not in message


def test_a_sqlite_file_that_cannot_be_opened_is_store_unavailable(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    with pytest.raises(StoreUnavailable, match="unable to open"):
        SqlStore(f"sqlite:///{tmp_path / 'a-file' / 'tesk.db'}")


def test_a_data_dir_that_cannot_be_created_is_store_unavailable(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    with pytest.raises(StoreUnavailable, match="data dir"):
        SqlStore.from_config(CustomConfig(data_dir=tmp_path / "a-file" / "data"))


class TcpProxy:
    """Forwards a loopback port to a server; stop() cuts every connection and refuses new ones."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._stopped = threading.Event()
        self._sockets: list[socket.socket] = []
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port))
        listener.settimeout(0.05)
        self.port = listener.getsockname()[1]
        self._stopped.clear()
        self._thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join()
        for sock in self._sockets:
            _cut(sock)
        self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        with listener:
            while not self._stopped.is_set():
                try:
                    client, _ = listener.accept()
                except TimeoutError:
                    continue
                client.settimeout(None)
                server = socket.create_connection(self.target)
                self._sockets += [client, server]
                for source, sink in ((client, server), (server, client)):
                    threading.Thread(target=_pump, args=(source, sink), daemon=True).start()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    _cut(sink)


def _cut(sock: socket.socket) -> None:
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


@pytest.mark.postgres
def test_a_lost_postgresql_server_is_unavailable_until_it_returns(postgres_url: sa.URL) -> None:
    proxy = TcpProxy((postgres_url.host or "127.0.0.1", postgres_url.port or 5432))
    proxy.start()
    url = postgres_url.set(host="127.0.0.1", port=proxy.port)
    store = SqlStore(url, pool_size=2)
    try:
        store.create(make_record("t1", 1))

        proxy.stop()
        calls: dict[str, Callable[[], object]] = {
            "ping": store.ping,
            "get": lambda: store.get("t1"),
            "create": lambda: store.create(make_record("t2", 2, tags={"k": "v"})),
            "update": lambda: store.update("t1", Progress(State.RUNNING)),
            "list": lambda: store.list_tasks(TaskQuery()),
            "find": lambda: store.find({State.QUEUED}),
            "read": lambda: store.read("t1"),
            "read minimal": lambda: store.read("t1", with_documents=False),
            "list documents": lambda: store.list_documents(TaskQuery()),
        }
        for name, call in calls.items():
            with pytest.raises(StoreUnavailable) as raised:
                call()
            # (The test role's password is also its name and its database's: look for the pair.)
            secret = f"{postgres_url.username}:{postgres_url.password}"
            assert secret not in str(raised.value), name

        proxy.start()
        store.ping()
        got = store.get("t1")
        assert got is not None
        assert got.state is State.QUEUED
        assert store.get("t2") is None
    finally:
        store.close()
        proxy.stop()


@pytest.mark.postgres
def test_idle_postgresql_connections_are_pinged_and_replaced_after_a_restart(
    postgres_url: sa.URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "PG_PING_AFTER_IDLE_S", 0.0)  # every pooled one is "idle"
    proxy = TcpProxy((postgres_url.host or "127.0.0.1", postgres_url.port or 5432))
    proxy.start()
    store = SqlStore(postgres_url.set(host="127.0.0.1", port=proxy.port), pool_size=2)
    try:
        store.create(make_record("t1", 1))
        assert store.read("t1") is not None
        proxy.stop()  # every pooled connection is cut, as by a server restart
        proxy.start()
        # The ping finds the cut connection before use: the calls go through on new ones.
        got = store.read("t1")
        assert got is not None
        assert got.state is State.QUEUED
        assert store.update("t1", Progress(State.RUNNING)) is not None
    finally:
        store.close()
        proxy.stop()


@pytest.mark.postgres
def test_a_postgresql_restart_fails_a_just_used_connection_once(
    postgres_url: sa.URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "PG_PING_AFTER_IDLE_S", 3600.0)  # nothing is pinged
    proxy = TcpProxy((postgres_url.host or "127.0.0.1", postgres_url.port or 5432))
    proxy.start()
    store = SqlStore(postgres_url.set(host="127.0.0.1", port=proxy.port), pool_size=2)
    try:
        store.create(make_record("t1", 1))
        # Two connections in the pool, both used just now.
        first, second = store._engine.raw_connection(), store._engine.raw_connection()
        first.close()
        second.close()
        proxy.stop()
        proxy.start()
        with pytest.raises(StoreUnavailable):
            store.read("t1")
        # That failure replaced the pool: no other stale connection is handed out.
        for _ in range(3):
            got = store.read("t1")
            assert got is not None
            assert got.state is State.QUEUED
    finally:
        store.close()
        proxy.stop()


def test_a_sqlite_write_lock_held_too_long_is_unavailable_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "SQLITE_BUSY_TIMEOUT_S", 0.2)
    path = tmp_path / "tesk.db"
    store = SqlStore(f"sqlite:///{path}")
    store.create(make_record("t1", 1))
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        blocker.execute("UPDATE tasks SET name = 'uncommitted' WHERE id = 't1'")

        # WAL: readers go on reading the last committed state while another process writes.
        got = store.get("t1")
        assert got is not None
        assert got.name is None
        assert [r.id for r in store.list_tasks(TaskQuery()).records] == ["t1"]
        with pytest.raises(StoreUnavailable, match="locked"):
            store.create(make_record("t2", 2, tags={"k": "v"}))
        with pytest.raises(StoreUnavailable, match="locked"):
            store.update("t1", Progress(State.RUNNING))

        blocker.execute("ROLLBACK")
        assert store.get("t2") is None
        store.create(make_record("t2", 2, tags={"k": "v"}))
        assert store.update("t1", Progress(State.RUNNING)) is not None
    finally:
        blocker.close()
        store.close()


def test_a_sqlite_write_waits_for_another_process_and_keeps_the_busy_timeout(
    tmp_path: Path,
) -> None:
    path = tmp_path / "tesk.db"
    store = SqlStore(f"sqlite:///{path}")
    store.create(make_record("t1", 1))
    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        releaser = threading.Timer(0.3, lambda: blocker.execute("COMMIT"))
        releaser.start()
        # The update waits for the lock (held by another connection, as another process would)
        # and is applied once the lock is free.
        updated = store.update("t1", Progress(State.RUNNING))
        releaser.join()
        assert updated is not None
        assert updated.state == State.RUNNING
        got = store.get("t1")
        assert got is not None
        assert got.state == State.RUNNING
        # Statements other than BEGIN IMMEDIATE keep the full busy timeout.
        with closing(store._engine.raw_connection()) as connection:
            timeout = connection.cursor().execute("PRAGMA busy_timeout").fetchone()
        assert timeout == (int(database.SQLITE_BUSY_TIMEOUT_S * 1000),)
    finally:
        blocker.close()
        store.close()


# --- what the rows hold --------------------------------------------------------------------------


def test_rows_hold_the_indexed_fields_and_count_versions(sql_url: sa.URL) -> None:
    store = SqlStore(sql_url)
    engine = sa.create_engine(parse_url(sql_url), poolclass=NullPool)
    try:
        store.create(make_record("t1", 42, name="n", owner="o", worker="w", tags={"a": "b"}))

        def row() -> tuple[Any, ...]:
            with engine.connect() as conn:
                found = conn.execute(
                    sa.text(
                        "SELECT state, seq, version, CAST(task AS TEXT), CAST(log AS TEXT)"
                        " FROM tasks"
                    )
                ).one()
                return tuple(found)

        created = row()
        store.update("t1", Progress(State.RUNNING, seq=1, system_logs=("started",)))
        store.update("t1", Progress(State.RUNNING, seq=1))  # ignored: not newer
        updated = row()
        with engine.connect() as conn:
            tags = conn.execute(
                sa.text("SELECT task_id, key, value, created_us FROM task_tags")
            ).all()
    finally:
        engine.dispose()
        store.close()

    assert tuple(created[:3]) == ("QUEUED", 0, 0)
    assert tuple(updated[:3]) == ("RUNNING", 1, 1)
    assert updated[3] == created[3], "a progress update must not rewrite the task document"
    assert TaskLog.model_validate_json(str(updated[4])).system_logs == ["started"]
    assert [tuple(t) for t in tags] == [("t1", "a", "b", 42)]


@pytest.mark.parametrize(
    "record",
    [
        make_record("t\x00", 1),
        make_record("t1", 1, name="a\x00b"),
        make_record("t1", 1, owner="\x00"),
        make_record("t1", 1, worker="w\x00"),
        make_record("t1", 1, tags={"k\x00": "v"}),
        make_record("t1", 1, tags={"k": "v\x00"}),
    ],
)
def test_nul_characters_in_indexed_fields_are_refused(
    sql_store: SqlStore, record: TaskRecord
) -> None:
    with pytest.raises(InvalidRequest, match="NUL"):
        sql_store.create(record)
    assert sql_store.list_tasks(TaskQuery()).records == []


def test_nul_characters_in_documents_and_logs_are_kept(sql_store: SqlStore) -> None:
    record = make_record("t1", 1)
    record.task.executors[0].command = ["printf", "a\x00b"]
    sql_store.create(record)

    log = TaskLog(system_logs=["binary \x00 output"])
    sql_store.update("t1", Progress(State.RUNNING, seq=1, log=log))

    got = sql_store.get("t1")
    assert got is not None
    assert got.task.executors[0].command == ["printf", "a\x00b"]
    assert got.log is not None
    assert got.log.system_logs == ["binary \x00 output"]
    with pytest.raises(InvalidRequest, match="NUL"):
        sql_store.update("t1", Progress(State.RUNNING, seq=2), worker="w\x00")


def test_name_prefixes_at_the_ends_of_unicode(sql_store: SqlStore) -> None:
    names = ["a\U0010ffff", "a\U0010ffffz", "b", "x\ud7ff", "x\ud7ffq", "x\ue000", "\U0010ffff"]
    for i, name in enumerate(names):
        sql_store.create(make_record(f"t{i}", i, name=name))

    def matching(prefix: str) -> set[str]:
        records = sql_store.list_tasks(TaskQuery(name_prefix=prefix)).records
        return {names[int(r.id[1:])] for r in records}

    assert matching("a\U0010ffff") == {"a\U0010ffff", "a\U0010ffffz"}
    assert matching("x\ud7ff") == {"x\ud7ff", "x\ud7ffq"}
    assert matching("\U0010ffff") == {"\U0010ffff"}
    assert matching("a") == {"a\U0010ffff", "a\U0010ffffz"}


# --- query plans (SQLite; PostgreSQL plans depend on its statistics) ----------------------------

CURSOR = Cursor(10**15, "m")


@pytest.mark.parametrize(
    "query",
    [
        TaskQuery(),
        TaskQuery(after=CURSOR),
        TaskQuery(state=State.RUNNING, after=CURSOR),
        TaskQuery(owner="alice", after=CURSOR),
        TaskQuery(tags=[("project", "p1")], after=CURSOR),
        TaskQuery(tags=[("project", None)], after=CURSOR),
        TaskQuery(tags=[("sample", None), ("project", "p1"), ("run", None)], after=CURSOR),
        TaskQuery(tags=[("project", "p1")], state=State.COMPLETE, owner="bob", after=CURSOR),
    ],
    ids=["all", "after", "state", "owner", "tag", "tag-key", "tags", "tag-state-owner"],
)
def test_sqlite_reads_pages_in_index_order(tmp_path: Path, query: TaskQuery) -> None:
    plan = _sqlite_plan(tmp_path, query)
    assert "TEMP B-TREE" not in plan
    assert "SCAN" not in plan.replace("SCAN tasks USING INDEX ix_tasks_created", "")


def test_sqlite_sorts_only_index_entries_for_a_name_prefix(tmp_path: Path) -> None:
    plan = _sqlite_plan(tmp_path, TaskQuery(name_prefix="bwa-", after=CURSOR))
    # The page is found among index entries, then only its rows are read.
    assert plan.startswith("MATERIALIZE page | SEARCH tasks USING COVERING INDEX ix_tasks_name")


def _sqlite_plan(tmp_path: Path, query: TaskQuery) -> str:
    path = tmp_path / "tesk.db"
    SqlStore(f"sqlite:///{path}").close()
    columns = [tasks.c.id, tasks.c.state, tasks.c.task, tasks.c.log]
    statement = page(query, columns).compile(
        dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}
    )
    with closing(sqlite3.connect(path)) as conn:
        rows = conn.execute(f"EXPLAIN QUERY PLAN {statement}").fetchall()
    return " | ".join(str(row[3]) for row in rows)


@pytest.mark.parametrize(("setting", "pragma"), [(None, 2), ("FULL", 2), ("NORMAL", 1)])
def test_sqlite_commits_are_synced_as_configured(
    tmp_path: Path, setting: str | None, pragma: int
) -> None:
    # FULL (2) syncs the write-ahead log at every commit: an answered CreateTask survives a power
    # loss. It is the default; NORMAL (1) must be asked for.
    options = {"sqlite_synchronous": setting} if setting else {}
    store = SqlStore(f"sqlite:///{tmp_path / 'tesk.db'}", **options)  # type: ignore[arg-type]
    try:
        with store._engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == pragma
        store.create(make_record("t1", 1))
        with store._driver.cursor() as cursor:
            cursor.execute("PRAGMA synchronous")
            assert cursor.fetchone()[0] == pragma
    finally:
        store.close()
