"""Which QUEUED tasks a runner takes first: fairly across owners, oldest first within each.

One owner's burst of thousands of tasks must not starve another owner's single task. So each
free slot goes to the owner with the fewest tasks running (counting those taken in the same
claim); among owners running equally many, to the one whose next task is the oldest; within an
owner, tasks go oldest first. Without authentication every task has the same owner, and this is
plain oldest-first.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Queued:
    task_id: str
    owner: str | None
    created_us: int


def fair_order(
    queued: Iterable[Queued], running: Mapping[str | None, int], limit: int
) -> list[str]:
    """The ids of up to `limit` of the `queued` tasks, in the order they should start."""
    by_owner: dict[str | None, list[Queued]] = {}
    for task in sorted(queued, key=lambda t: (t.created_us, t.task_id)):
        by_owner.setdefault(task.owner, []).append(task)
    # (tasks the owner runs, its next task's age, a tie-breaker, the owner, index of its next)
    turns = [
        (running.get(owner, 0), tasks[0].created_us, tasks[0].task_id, owner, 0)
        for owner, tasks in by_owner.items()
    ]
    heapq.heapify(turns)
    order: list[str] = []
    while turns and len(order) < limit:
        load, _created, _tie, owner, index = heapq.heappop(turns)
        tasks = by_owner[owner]
        order.append(tasks[index].task_id)
        if index + 1 < len(tasks):
            following = tasks[index + 1]
            heapq.heappush(
                turns, (load + 1, following.created_us, following.task_id, owner, index + 1)
            )
    return order
