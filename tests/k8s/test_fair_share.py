"""TESK's queue on the real cluster (kubernetes.max_running_tasks): fair share between owners.

Run with `pytest -s` to see the timeline each test observed (task, owner, when the dispatcher
claimed it, the TaskLog's start and end times).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tesk.auth.identity import Identity
from tesk.backends.kubernetes import names
from tesk.store.sql import SqlStore
from tesk.tes.models import epoch_seconds
from tesk.tes.states import STARTED, State, is_terminal
from tests.k8s.backend_env import Deployment, deployment, task
from tests.k8s.realcluster import TestCluster

ALICE = Identity("alice")
BOB = Identity("bob")
TASKMASTERS = f"{names.LABEL_COMPONENT}={names.COMPONENT_TASKMASTER}"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    store = SqlStore(f"sqlite:///{tmp_path / 'tesk.db'}")
    yield store
    store.close()


@dataclass
class Observed:
    task_id: str
    owner: str
    label: str
    claimed: float | None = None  # when the test first saw it past QUEUED (epoch seconds)
    start: float | None = None  # TaskLog.start_time
    end: float | None = None  # TaskLog.end_time
    state: State = State.QUEUED


def watch(env: Deployment, tasks: list[Observed], timeout: float = 240.0) -> int:
    """Follow the tasks until all are final; the most that were started at once."""
    most = 0
    end = time.monotonic() + timeout
    while True:
        started = 0
        for seen in tasks:
            record = env.record(seen.task_id)
            seen.state = record.state
            if record.state != State.QUEUED and seen.claimed is None:
                seen.claimed = time.time()
            if record.log is not None:
                seen.start = epoch_seconds(record.log.start_time) or seen.start
                seen.end = epoch_seconds(record.log.end_time) or seen.end
            started += record.state in STARTED
        most = max(most, started)
        if all(is_terminal(seen.state) for seen in tasks):
            return most
        if time.monotonic() > end:
            raise AssertionError(f"not all final after {timeout} s: {timeline(tasks)}")
        time.sleep(0.05)


def timeline(tasks: list[Observed]) -> str:
    origin = min(seen.claimed or time.time() for seen in tasks)

    def at(value: float | None) -> str:
        return "-" if value is None else f"{value - origin:7.2f}"

    lines = [f"{'task':6} {'owner':6} {'claimed':>8} {'start':>8} {'end':>8}  state"]
    for seen in sorted(tasks, key=lambda s: s.claimed or 0):
        lines.append(
            f"{seen.label:6} {seen.owner:6} {at(seen.claimed):>8} {at(seen.start):>8} "
            f"{at(seen.end):>8}  {seen.state}"
        )
    return "\n".join(lines)


def submit(env: Deployment, caller: Identity, label: str) -> Observed:
    task_id = env.service.create(task(["sleep", "2"], name=label), caller)
    return Observed(task_id, caller.subject, label)


@pytest.mark.parametrize("limit", [1, 2])
def test_an_owners_backlog_does_not_starve_another_owners_task(
    cluster: TestCluster, store: SqlStore, limit: int
) -> None:
    with deployment(cluster, store=store, max_running_tasks=limit) as env:
        backlog = [submit(env, ALICE, f"a{i}") for i in range(1, 5)]
        # Bob comes once alice's first tasks hold every slot.
        for first in backlog[:limit]:
            env.wait_state(first.task_id, lambda s: s != State.QUEUED, timeout=30)
        bob = submit(env, BOB, "b1")
        tasks = [*backlog, bob]
        most = watch(env, tasks)
        print(f"\nmax_running_tasks={limit}\n{timeline(tasks)}")

    assert [seen.state for seen in tasks] == [State.COMPLETE] * 5, timeline(tasks)
    assert most <= limit, timeline(tasks)
    assert bob.start is not None, timeline(tasks)
    alice_starts = [seen.start for seen in backlog if seen.start is not None]
    assert len(alice_starts) == len(backlog), timeline(tasks)
    # With two slots alice runs one when a slot frees and bob none; with one slot nobody runs,
    # and bob, never served, goes before alice, served last. Either way bob's task starts
    # before her backlog is done.
    assert bob.start < max(alice_starts), timeline(tasks)


def test_a_task_cancelled_in_the_queue_ends_without_a_job(
    cluster: TestCluster, store: SqlStore
) -> None:
    with deployment(cluster, store=store, max_running_tasks=1) as env:
        running = env.service.create(task(["sleep", "5"]), ALICE)
        env.wait_state(running, lambda s: s != State.QUEUED, timeout=30)
        waiting = env.service.create(task(["true"]), ALICE)
        assert env.record(waiting).state == State.QUEUED
        env.service.cancel(waiting, ALICE)
        assert env.record(waiting).state == State.CANCELED
        assert env.wait_state(running).state == State.COMPLETE
        jobs = cluster.objects("jobs", labelSelector=TASKMASTERS)
        tasks_with_jobs = {job["metadata"]["labels"][names.LABEL_TASK] for job in jobs}
        assert tasks_with_jobs == {running}
