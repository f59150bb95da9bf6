"""ListTasks in SQL: one page, newest first, read in index order whatever the filters.

Every filter has an index ending in (created_us, id), so a page is a walk down one index that
stops after page_size + 1 rows. A tag filter walks `task_tags` by (key, value, created_us): the
tasks carrying a tag come out newest first whether the tag is on five tasks or on most of them.
Only a name prefix (a range) cannot come out in order: its page is first found among
(created_us, id) pairs, so that the sort handles small tuples and never task documents.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from tesk.store.base import TaskQuery
from tesk.store.schema import task_tags, tasks


def page(query: TaskQuery, columns: Sequence[sa.ColumnElement[Any]]) -> sa.Select[Any]:
    """`columns` (of `tasks`) of the page and of one more row (a next page exists when it does)."""
    if query.name_prefix:
        keys = page_keys(query).subquery("page")
        return (
            sa.select(*columns)
            .join(keys, tasks.c.id == keys.c.id)
            .order_by(keys.c.created_us.desc(), keys.c.id.desc())
        )
    return _walk(query, columns)


def page_keys(query: TaskQuery) -> sa.Select[Any]:
    """(id, created_us) of the page and one more row."""
    return _walk(query, None)


def _walk(query: TaskQuery, columns: Sequence[sa.ColumnElement[Any]] | None) -> sa.Select[Any]:
    tags = list(query.tags)
    driver = _driving_tag(tags)
    row_conditions = _row_conditions(query)
    if driver is None:
        id_column, created_column = tasks.c.id, tasks.c.created_us
        statement = sa.select(*(columns or (id_column, created_column)))
        conditions = row_conditions
    else:
        tags.remove(driver)
        by_tag = task_tags.alias("by_tag")
        id_column, created_column = by_tag.c.task_id, by_tag.c.created_us
        statement = sa.select(*(columns or (id_column.label("id"), created_column)))
        if columns or row_conditions:
            statement = statement.select_from(by_tag.join(tasks, tasks.c.id == by_tag.c.task_id))
        else:
            statement = statement.select_from(by_tag)
        conditions = [tag_matches(by_tag, *driver), *row_conditions]
    if query.after is not None:
        conditions.append(
            sa.tuple_(created_column, id_column)
            < sa.tuple_(sa.literal(query.after.created_us), sa.literal(query.after.task_id))
        )
    for number, (key, value) in enumerate(tags):
        other = task_tags.alias(f"tag_{number}")
        conditions.append(
            sa.exists()
            .where(other.c.task_id == id_column, tag_matches(other, key, value))
            .correlate_except(other)
        )
    return (
        statement.where(*conditions)
        .order_by(created_column.desc(), id_column.desc())
        .limit(query.page_size + 1)
    )


def _driving_tag(tags: Sequence[tuple[str, str | None]]) -> tuple[str, str | None] | None:
    """The tag filter to walk: one with a value (usually the most selective), else the first."""
    for tag in tags:
        if tag[1] is not None:
            return tag
    return tags[0] if tags else None


def tag_matches(table: sa.FromClause, key: str, value: str | None) -> sa.ColumnElement[bool]:
    if value is None:
        return table.c.key == key
    return sa.and_(table.c.key == key, table.c.value == value)


def _row_conditions(query: TaskQuery) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    if query.owner is not None:
        conditions.append(tasks.c.owner == query.owner)
    if query.state is not None:
        conditions.append(tasks.c.state == query.state.value)
    if query.name_prefix:
        conditions.append(starts_with(tasks.c.name, query.name_prefix))
    return conditions


def starts_with(column: sa.ColumnElement[str], prefix: str) -> sa.ColumnElement[bool]:
    """Case-sensitive prefix match that an index serves, with no wildcard characters at all.

    SQLite's LIKE ignores ASCII case, so the prefix is a range on the byte-wise collation both
    databases use for this column: prefix <= value < the prefix with its last character bumped.
    """
    upper = successor(prefix)
    if upper is None:
        return column >= prefix
    return sa.and_(column >= prefix, column < upper)


def successor(prefix: str) -> str | None:
    """The smallest string greater than every string that starts with `prefix` (None: no bound)."""
    chars = list(prefix)
    while chars:
        code = ord(chars.pop()) + 1
        if 0xD800 <= code <= 0xDFFF:  # surrogates cannot be stored: skip to the next scalar value
            code = 0xE000
        if code <= 0x10FFFF:
            return "".join(chars) + chr(code)
    return None
