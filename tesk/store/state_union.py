"""ListTasks over several states with a store that filters by one.

Each single-state page is a walk down one index; their union is merged here rather than asked of
the store as `state IN (...)`, which no index serves in (created_us, id) order.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace

from tesk.store.base import Cursor, DocumentPage, TaskQuery, TaskStore
from tesk.tes.states import State


def list_in_states(store: TaskStore, query: TaskQuery, states: Collection[State]) -> DocumentPage:
    """One page of the tasks matching `query` in any of `states`, as the store pages them.

    Every state's page starts after the same cursor and comes newest first, so the newest
    `page_size` of their union are the union's page; the next one starts after its last task.
    """
    if len(states) == 1:
        return store.list_documents(replace(query, state=next(iter(states))))
    pages = [store.list_documents(replace(query, state=state)) for state in sorted(states)]
    merged = sorted(
        (found for page in pages for found in page.tasks),
        key=lambda found: (found.created_us, found.id),
        reverse=True,
    )
    records = merged[: query.page_size]
    more = len(merged) > len(records) or any(page.next_cursor is not None for page in pages)
    if not (more and records):
        return DocumentPage(tasks=records, next_cursor=None)
    last = records[-1]
    return DocumentPage(
        tasks=records, next_cursor=Cursor(created_us=last.created_us, task_id=last.id)
    )
