"""The tables of the SQL task store and their idempotent creation."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.schema import CreateIndex, CreateTable


class JsonDocument(sa.types.TypeDecorator[str]):
    """A JSON document passed through as text.

    Both databases keep the text as written (PostgreSQL's `json`, not `jsonb`: it accepts the NUL
    characters executor output may hold, keeps key order and costs no conversion), and TESK reads
    the text back: the views decode it with orjson, the engine's reads parse it with pydantic.
    """

    impl = sa.JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.JSON())
        return dialect.type_descriptor(sa.JSON())

    def bind_processor(self, dialect: Dialect) -> None:
        return None  # already JSON text

    def result_processor(self, dialect: Dialect, coltype: object) -> None:
        return None  # column_expression hands back the text

    def column_expression(self, column: sa.ColumnElement[str]) -> sa.ColumnElement[str]:
        return sa.cast(column, sa.Text)


# Ids, names and owners compare byte-wise on both databases (PostgreSQL's default collation is
# locale-aware), so that keyset order, name-prefix ranges and the in-memory store agree.
Key = sa.String().with_variant(sa.String(collation="C"), "postgresql")

metadata = sa.MetaData()

tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("id", Key, primary_key=True),
    sa.Column("name", Key, nullable=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("owner", Key, nullable=True),
    sa.Column("created_us", sa.BigInteger, nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    # Bumped by every update; an UPDATE ... WHERE version = <read version> is the compare-and-set.
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("worker", Key, nullable=True),
    # The document accepted at create, and the progress log apart from it, so that a progress
    # update never rewrites a large task document.
    sa.Column("task", JsonDocument, nullable=False),
    sa.Column("log", JsonDocument, nullable=True),
    # The TaskLogs of the attempts before the current one, oldest first (NULL: there were none);
    # apart from `log` so that the current attempt's updates never rewrite them.
    sa.Column("attempts", JsonDocument, nullable=True),
)

# Columns added after the first release: create_schema adds each to a table that lacks it.
_ADDED_COLUMNS = {"tasks": ("attempts",)}

task_tags = sa.Table(
    "task_tags",
    metadata,
    sa.Column(
        "task_id",
        Key,
        sa.ForeignKey("tasks.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("key", Key, primary_key=True),
    sa.Column("value", Key, nullable=False),
    # The task's created_us (which never changes), so that a tag filter reads its tasks from the
    # index below already in listing order.
    sa.Column("created_us", sa.BigInteger, nullable=False),
)

# When each owner was last given a runner slot, for fair claims (tesk/store/fair.py). Tasks without
# an owner (authentication off) are the owner "".
owner_turns = sa.Table(
    "owner_turns",
    metadata,
    sa.Column("owner", Key, primary_key=True),
    sa.Column("last_turn_us", sa.BigInteger, nullable=False),
)

# One row per task event (tesk/tes/events.py), written in the transaction of the change it reports.
# `id` grows with every event (SQLite: AUTOINCREMENT, never reused; PostgreSQL: a sequence), the
# order in which followers read them (tesk/events/watcher.py explains the order of commits).
task_events = sa.Table(
    "task_events",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("task_id", Key, sa.ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False),
    sa.Column("kind", sa.String(24), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("time_us", sa.BigInteger, nullable=False),
    sa.Column("executor", sa.Integer, nullable=True),
    sa.Column("exit_code", sa.Integer, nullable=True),
    sqlite_autoincrement=True,
)

# Every listing index ends in (created_us, id): a filtered listing reads its page newest first
# straight from the index, without sorting, and finds the keyset position by a range.
sa.Index("ix_tasks_created", tasks.c.created_us, tasks.c.id)
sa.Index("ix_tasks_state_created", tasks.c.state, tasks.c.created_us, tasks.c.id)
# Fair claims rank each owner's QUEUED tasks by age (tesk/store/fair.py).
sa.Index(
    "ix_tasks_state_owner_created", tasks.c.state, tasks.c.owner, tasks.c.created_us, tasks.c.id
)
sa.Index("ix_tasks_owner_created", tasks.c.owner, tasks.c.created_us, tasks.c.id)
# A name prefix is a range, so its matches need sorting: this index holds everything to sort.
sa.Index("ix_tasks_name_created", tasks.c.name, tasks.c.created_us, tasks.c.id)
sa.Index("ix_tasks_worker_state", tasks.c.worker, tasks.c.state)
sa.Index(
    "ix_task_tags_value_created",
    task_tags.c.key,
    task_tags.c.value,
    task_tags.c.created_us,
    task_tags.c.task_id,
)
sa.Index("ix_task_tags_key_created", task_tags.c.key, task_tags.c.created_us, task_tags.c.task_id)

# A task's own stream reads its events in order; the stream of every task reads the primary key.
sa.Index("ix_task_events_task", task_events.c.task_id, task_events.c.id)

# Any constant shared by every TESK process: serialises schema creation on PostgreSQL.
_SCHEMA_LOCK_KEY = 0x7E5C_0001


def create_schema(conn: Connection) -> None:
    """Create missing tables, columns and indexes inside the caller's transaction.

    Safe when several processes start at once: SQLite runs this under its write lock (the caller's
    transaction is BEGIN IMMEDIATE) and PostgreSQL under a transaction-scoped advisory lock, so
    a column is looked for and added by one process at a time.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_SCHEMA_LOCK_KEY)))
    for table in metadata.sorted_tables:
        conn.execute(CreateTable(table, if_not_exists=True))
        _add_missing_columns(conn, table)
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            conn.execute(CreateIndex(index, if_not_exists=True))


def _add_missing_columns(conn: Connection, table: sa.Table) -> None:
    """Add the columns of `table` that a database made by an earlier TESK lacks (CREATE TABLE IF
    NOT EXISTS leaves an existing table as it is). Every added column is nullable."""
    added = _ADDED_COLUMNS.get(table.name, ())
    if not added:
        return
    present = {column["name"] for column in sa.inspect(conn).get_columns(table.name)}
    preparer = conn.dialect.identifier_preparer
    for name in added:
        if name in present:
            continue
        column = table.c[name]
        kind = column.type.compile(dialect=conn.dialect)
        conn.execute(
            sa.text(
                f"ALTER TABLE {preparer.format_table(table)} "
                f"ADD COLUMN {preparer.format_column(column)} {kind}"
            )
        )
