"""Group commit: concurrent creates share commits, and each caller gets its own outcome."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from tesk.store.batch import GroupCommit


class Database:
    def __init__(self) -> None:
        self.committed: list[int] = []
        self.commits: list[list[int]] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def write(self, items: Sequence[int]) -> None:
        if len(self.commits) == 0 and not self.release.is_set():
            self.entered.set()
            self.release.wait(5)  # the first commit is slow: the others queue up behind it
        if any(item < 0 for item in items):
            raise ValueError(f"refused {[i for i in items if i < 0]}")
        self.commits.append(list(items))
        self.committed += items


def test_creates_waiting_for_a_commit_share_the_next_one_and_fail_alone() -> None:
    database = Database()
    group = GroupCommit(database.write)
    errors: dict[int, str] = {}

    def create(item: int) -> None:
        try:
            group.submit(item)
        except ValueError as exc:
            errors[item] = str(exc)

    first = threading.Thread(target=create, args=(0,))
    first.start()
    assert database.entered.wait(5)
    others = [threading.Thread(target=create, args=(i,)) for i in (1, 2, -3, 4)]
    for thread in others:
        thread.start()
    while len(group._queue) < 4:  # every other create waits for the slow commit
        threading.Event().wait(0.01)
    database.release.set()
    for thread in [first, *others]:
        thread.join(5)

    assert sorted(database.committed) == [0, 1, 2, 4]
    assert errors == {-3: "refused [-3]"}
    assert database.commits[0] == [0]
    # The four that waited were tried together once, then each alone (-3 spoilt the batch).
    assert sorted(map(tuple, database.commits[1:])) == [(1,), (2,), (4,)]


def test_a_create_alone_raises_its_own_error() -> None:
    database = Database()
    database.release.set()
    group = GroupCommit(database.write)

    group.submit(1)
    with pytest.raises(ValueError, match=r"refused \[-1\]"):
        group.submit(-1)
    assert database.commits == [[1]]
