"""The store's hot paths on the driver's own connections, with SQL that SQLAlchemy compiled once.

CreateTask and GetTask each run one small transaction or one statement. Through a SQLAlchemy
Connection that costs ~150 µs per call on a 2-core machine (pool events, transaction objects,
result wrapping) against ~25 µs on the driver's cursor (benchmarks/api_throughput.py,
docs/performance.md): most of their time in the store. The statements are still SQLAlchemy
statements, compiled once per dialect, so they keep each column type's SQL (JSON columns read back
as text) and each driver's parameter style; connections still come from the engine's pool, which
pings PostgreSQL connections that lay idle before handing them out (database.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.sql.compiler import SQLCompiler

from tesk.store import database
from tesk.store.base import StoreUnavailable


class Compiled:
    """One statement compiled for one dialect; `params` orders values for positional drivers."""

    def __init__(
        self, statement: sa.ClauseElement, dialect: Dialect, column_keys: Sequence[str] = ()
    ) -> None:
        compiled = cast(
            SQLCompiler,
            statement.compile(dialect=dialect, column_keys=list(column_keys) or None),
        )
        self.sql = compiled.string
        order = compiled.positiontup if compiled.positional else None
        self._order = tuple(order) if order is not None else None

    def params(self, values: Mapping[str, Any]) -> Sequence[Any] | Mapping[str, Any]:
        if self._order is None:
            return values
        return tuple(values[name] for name in self._order)


class Driver:
    """Cursors on the engine's pooled connections; the driver's errors become StoreUnavailable
    (unavailable) or stay the driver's (`integrity_error`: a duplicate id)."""

    def __init__(self, engine: Engine, where: str) -> None:
        self._engine = engine
        # Held by every write transaction, this one's and the SQLAlchemy path's (database.py).
        self.writer_turn = database.writer_turns(engine)
        self._where = where
        self._sqlite = engine.dialect.name == "sqlite"
        dbapi: Any = engine.dialect.loaded_dbapi
        self._unavailable: tuple[type[Exception], ...] = (
            dbapi.OperationalError,
            dbapi.InterfaceError,
        )
        self.integrity_error: type[Exception] = dbapi.IntegrityError
        self.dialect = engine.dialect

    @contextmanager
    def cursor(self) -> Iterator[Any]:
        """A cursor for one read statement (it sees every committed transaction)."""
        with self._connection() as connection:
            # One statement needs no transaction: in autocommit, PostgreSQL's driver sends no
            # BEGIN, and the pool's reset sends no ROLLBACK when the connection goes back.
            driver_connection = connection.dbapi_connection
            if not self._sqlite:
                driver_connection.autocommit = True
            cursor = connection.cursor()
            try:
                yield cursor
            finally:
                cursor.close()
                if not self._sqlite:
                    driver_connection.autocommit = False

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A cursor in a write transaction, committed when the block ends without an error.

        SQLite takes its write lock at BEGIN IMMEDIATE (as the SQLAlchemy path does, see
        database.py), in this process's writer turn; PostgreSQL's driver begins a transaction
        with the first statement.
        """
        with self.writer_turn(), self._connection() as connection:
            cursor = connection.cursor()
            try:
                if self._sqlite:
                    database.begin_immediate(connection.driver_connection)
                yield cursor
                connection.commit()
            except BaseException:
                connection.rollback()
                raise
            finally:
                cursor.close()

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        # A checkout that cannot connect raises the driver's own error; an exhausted pool raises
        # SQLAlchemy's, which the caller maps with database.unavailable_on_error.
        try:
            connection = self._engine.raw_connection()
        except self._unavailable as exc:
            raise self._unavailable_error(exc) from None
        try:
            yield connection
        except self._unavailable as exc:
            # A connection that failed may be broken: it must not go back to the pool. A lost
            # PostgreSQL server (a restart) took every pooled connection with it: a new pool
            # connects anew, and connections still checked out are closed on return.
            error: Any = exc  # one of the driver's own errors (self._unavailable)
            lost = self._engine.dialect.is_disconnect(error, connection.dbapi_connection, None)
            connection.invalidate()
            if lost and not self._sqlite:
                self._engine.dispose(close=False)
            raise self._unavailable_error(exc) from None
        finally:
            connection.close()

    def _unavailable_error(self, exc: Exception) -> StoreUnavailable:
        # The driver's first line: never the statement's parameters (task documents).
        reason = (str(exc).strip() or type(exc).__name__).splitlines()[0]
        return StoreUnavailable(f"{self._where} is unavailable: {reason}")
