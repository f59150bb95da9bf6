"""Engines for the SQL store: URL checks, SQLite settings for several processes, error mapping."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from tesk.store.base import StoreUnavailable

# How long a SQLite writer waits for another process's write lock before the caller sees an error.
# Write transactions last milliseconds, so reaching this means the database is stuck, not busy.
SQLITE_BUSY_TIMEOUT_S = 30.0
PG_CONNECT_TIMEOUT_S = 10
PG_SESSION_OPTIONS = "-c max_parallel_workers_per_gather=0"
# A PostgreSQL connection idle for longer than this is pinged before use (see _ping_after_idle).
PG_PING_AFTER_IDLE_S = 1.0
_IDLE_SINCE = "tesk_idle_since"

BEGIN_MODE = "tesk_sqlite_begin"
"""Execution option: how a SQLite transaction begins (DEFERRED for reads, IMMEDIATE for writes)."""

_URL_HELP = "expected sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DATABASE"


def parse_url(url: str | sa.URL) -> sa.URL:
    """The SQLAlchemy URL for a store URL; `postgresql://` selects the psycopg 3 driver."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        # The text may hold a password: never echo it.
        raise ValueError(f"store URL cannot be parsed; {_URL_HELP}") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ValueError(f"unsupported store URL scheme {parsed.drivername!r}; {_URL_HELP}")
    if backend == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise ValueError(
            "the SQLite store needs a file (sqlite:///PATH), not an in-memory database"
        )
    return parsed


def describe(url: sa.URL) -> str:
    """Where the database is, without user name or password."""
    if url.get_backend_name() == "sqlite":
        return f"SQLite database {url.database}"
    port = f":{url.port}" if url.port else ""
    return f"PostgreSQL database {url.database or ''} on {url.host or 'localhost'}{port}"


def create_engine(url: sa.URL, pool_size: int, sqlite_synchronous: str = "FULL") -> Engine:
    if url.get_backend_name() == "sqlite":
        engine = _sqlite_engine(url, pool_size, sqlite_synchronous)
    else:
        engine = _postgres_engine(url, pool_size)
    # A forked worker (gunicorn) must open its own connections, never share its parent's sockets.
    engine_ref = weakref.ref(engine)
    os.register_at_fork(after_in_child=lambda: _dispose_in_child(engine_ref))
    return engine


def _dispose_in_child(engine_ref: weakref.ref[Engine]) -> None:
    engine = engine_ref()
    if engine is not None:
        engine.dispose(close=False)


def _postgres_engine(url: sa.URL, pool_size: int) -> Engine:
    # Every TESK query reads one page by an index; a parallel plan only adds the start-up of its
    # workers (measured: 30 ms on a 2-core server) to a query that takes one.
    given = url.query.get("options", "")
    options = " ".join([*([given] if isinstance(given, str) else given), PG_SESSION_OPTIONS])
    engine = sa.create_engine(
        url.difference_update_query(["options"]),
        pool_size=pool_size,
        connect_args={
            "connect_timeout": PG_CONNECT_TIMEOUT_S,
            "application_name": "tesk",
            "options": options.strip(),
        },
    )
    _ping_after_idle(engine)
    return engine


def _ping_after_idle(engine: Engine) -> None:
    """Ping a pooled connection before handing it out when it lay idle for a while.

    A server restart (or a proxy that dropped idle connections) must not surface as errors on
    stale connections. SQLAlchemy's pool_pre_ping pings at every checkout, which cost a GetTask a
    second round trip (0.13 ms of its 0.3 ms at the store, docs/performance.md). A connection
    used less than PG_PING_AFTER_IDLE_S ago was working then; one whose server went away since
    fails its request with StoreUnavailable (503), and the driver starts a new pool
    (dbapi.Driver).
    """

    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get(_IDLE_SINCE)
        if since is not None and time.monotonic() - since < PG_PING_AFTER_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error:
            # The pool discards this connection and checks out another (or connects anew).
            raise sa.exc.DisconnectionError() from None


def _sqlite_engine(url: sa.URL, pool_size: int, synchronous: str) -> Engine:
    if synchronous not in ("FULL", "NORMAL"):
        raise ValueError(f"SQLite synchronous must be FULL or NORMAL, not {synchronous!r}")
    engine = sa.create_engine(
        url, pool_size=pool_size, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S}
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        # TESK emits BEGIN itself (below): the driver's implicit transactions would start writes
        # as reads, and a read that turns into a write fails at once with "database is locked"
        # when another process has written in between, whatever the busy timeout.
        dbapi_connection.isolation_level = None
        _enable_wal(dbapi_connection)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        # FULL (the default) syncs the write-ahead log at every commit: an answered CreateTask
        # survives a power loss. In WAL mode NORMAL loses no committed transaction when a process
        # crashes, but a power loss may undo the last ones (it never corrupts the database).
        cursor.execute(f"PRAGMA synchronous = {synchronous}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        if conn.get_execution_options().get(BEGIN_MODE) == "IMMEDIATE":
            begin_immediate(conn.connection.driver_connection)
        else:
            conn.exec_driver_sql("BEGIN DEFERRED")

    return engine


def begin_immediate(connection: Any) -> None:
    """BEGIN IMMEDIATE on a SQLite connection, waiting for another process's write lock.

    SQLite's own busy handler sleeps ever longer between looks at a held lock (1, 2, 5, 10, 15,
    20, 25 ... ms), so under a burst of short write transactions from several processes a waiter
    sleeps on long after the lock was free. Here the look is repeated every 0.2 to 2 ms; the busy
    timeout of every other statement stays as it was.
    """
    connection.execute("PRAGMA busy_timeout = 0")
    try:
        deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
        delay = 0.0002
        while True:
            try:
                connection.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.002)
    finally:
        connection.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")


def writer_turns(engine: Engine) -> Callable[[], AbstractContextManager[object]]:
    """What a write transaction holds while it runs: on SQLite, this process's one writer turn.

    SQLite lets one transaction write at a time. Threads of one process that want to write wait
    for each other on a lock, which hands over the moment a transaction ends, instead of each
    polling SQLite's lock. PostgreSQL writers lock rows, not the database: no turn.
    """
    if engine.dialect.name != "sqlite":
        return contextlib.nullcontext
    lock = threading.Lock()
    return lambda: lock


def _enable_wal(dbapi_connection: sqlite3.Connection) -> None:
    """Switch the file to WAL (readers never block the writer); the mode persists in the file.

    The switch takes an exclusive lock, which processes starting together may find held by each
    other, and SQLite does not always wait for it: retry until the busy timeout.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            mode = dbapi_connection.execute("PRAGMA journal_mode = WAL").fetchone()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
            continue
        if mode is None or str(mode[0]).lower() != "wal":
            raise sqlite3.OperationalError(f"cannot switch the database to WAL mode (got {mode})")
        return


def writing(engine: Engine) -> Engine:
    """The engine for write transactions: on SQLite they take the write lock when they begin."""
    return engine.execution_options(**{BEGIN_MODE: "IMMEDIATE"})


@contextmanager
def unavailable_on_error(where: str) -> Iterator[None]:
    """Raise StoreUnavailable for every error that means the database cannot be used now.

    The message names the database and the driver's reason; never the SQL parameters (task
    documents) nor the URL's credentials, and the original exception is not chained for the same
    reason.
    """
    try:
        yield
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        raise StoreUnavailable(f"{where} is unavailable: {_reason(exc)}") from None
    except sqlite3.OperationalError as exc:  # from begin_immediate, which SQLAlchemy does not wrap
        raise StoreUnavailable(f"{where} is unavailable: {_first_line(exc)}") from None
    except sa.exc.DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        raise StoreUnavailable(f"{where} is unavailable: {_reason(exc)}") from None
    except sa.exc.TimeoutError:
        raise StoreUnavailable(f"{where} is unavailable: no free connection in the pool") from None


def _reason(exc: sa.exc.DBAPIError) -> str:
    original: Any = exc.orig
    return _first_line(original)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
