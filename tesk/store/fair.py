"""Which QUEUED tasks a runner takes first: fairly across owners, oldest first within each.

One owner's burst of thousands of tasks must not starve another owner's single task. So each
free slot goes to the owner with the fewest tasks running (counting those taken in the same
claim); among owners running equally many, to the one served least recently (an owner never
served first), then to the one whose next task is the oldest; within an owner, tasks go oldest
first. The last rule makes a single slot fair too: when it frees nobody runs anything, and the
owners waiting take turns. Without authentication every task has the same owner, and this is
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
    queued: Iterable[Queued],
    running: Mapping[str | None, int],
    limit: int,
    last_turn: Mapping[str | None, int] | None = None,
) -> list[str]:
    """The ids of up to `limit` of the `queued` tasks, in the order they should start.

    `last_turn`: when each owner was last given a slot (any increasing number; absent: never).
    """
    turns_before = last_turn or {}
    by_owner: dict[str | None, list[Queued]] = {}
    for task in sorted(queued, key=lambda t: (t.created_us, t.task_id)):
        by_owner.setdefault(task.owner, []).append(task)
    # (tasks the owner runs, when it was last served, its next task's age, a tie-breaker, the
    # owner, index of its next task); served in this claim counts as served last.
    turns = [
        (
            running.get(owner, 0),
            turns_before.get(owner, -1),
            tasks[0].created_us,
            tasks[0].task_id,
            owner,
            0,
        )
        for owner, tasks in by_owner.items()
    ]
    heapq.heapify(turns)
    order: list[str] = []
    served = max(turns_before.values(), default=0)
    while turns and len(order) < limit:
        load, _served, _created, _tie, owner, index = heapq.heappop(turns)
        tasks = by_owner[owner]
        order.append(tasks[index].task_id)
        served += 1
        if index + 1 < len(tasks):
            following = tasks[index + 1]
            heapq.heappush(
                turns,
                (load + 1, served, following.created_us, following.task_id, owner, index + 1),
            )
    return order
