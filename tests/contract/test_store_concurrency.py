"""Concurrent writers: threads on every store, processes on the SQL stores."""

from __future__ import annotations

import contextlib
import multiprocessing
import random
import threading
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa

from tesk.store.base import TaskQuery
from tesk.store.sql import SqlStore
from tesk.tes.models import TaskLog
from tesk.tes.progress import Progress
from tesk.tes.states import State
from tests.contract.conftest import OpenStore, make_record

THREADS = 6
T = TypeVar("T")


def run_threads(count: int, work: Callable[[int], T]) -> list[T]:
    """Run work(0..count-1) in threads released together; re-raise the first failure."""
    results: list[T | None] = [None] * count
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results  # type: ignore[return-value]


def test_exactly_one_of_competing_claims_wins(open_store: OpenStore) -> None:
    stores = [open_store() for _ in range(THREADS)]
    task_ids = [f"t{i}" for i in range(5)]
    for i, task_id in enumerate(task_ids):
        stores[0].create(make_record(task_id, i))

    def claim(index: int) -> list[bool]:
        return [
            stores[index].update(
                task_id,
                Progress(State.INITIALIZING),
                expected={State.QUEUED},
                worker=f"runner-{index}",
            )
            is not None
            for task_id in task_ids
        ]

    won = run_threads(THREADS, claim)

    for column, task_id in enumerate(task_ids):
        winners = [index for index in range(THREADS) if won[index][column]]
        assert len(winners) == 1, f"{task_id} claimed by {winners}"
        record = stores[0].get(task_id)
        assert record is not None
        assert (record.state, record.worker) == (State.INITIALIZING, f"runner-{winners[0]}")


def test_competing_batch_claims_give_each_task_to_one_runner(open_store: OpenStore) -> None:
    stores = [open_store() for _ in range(THREADS)]
    total = 40
    for i in range(total):
        stores[0].create(make_record(f"t{i:02d}", i))

    def claim(index: int) -> list[str]:
        mine: list[str] = []
        while batch := stores[index].claim(f"runner-{index}", 3):
            mine += [record.id for record in batch]
        return mine

    won = run_threads(THREADS, claim)

    every = [task_id for ids in won for task_id in ids]
    assert sorted(every) == [f"t{i:02d}" for i in range(total)]
    for index, ids in enumerate(won):
        for task_id in ids:
            record = stores[0].get(task_id)
            assert record is not None
            assert (record.state, record.worker) == (State.INITIALIZING, f"runner-{index}")


def test_concurrent_updates_lose_nothing(open_store: OpenStore) -> None:
    stores = [open_store() for _ in range(THREADS)]
    stores[0].create(make_record("t1", 1, state=State.RUNNING))
    lines_each = 15

    def report(index: int) -> list[bool]:
        return [
            stores[index].update("t1", Progress(State.RUNNING, system_logs=(f"{index}/{j}",)))
            is not None
            for j in range(lines_each)
        ]

    applied = run_threads(THREADS, report)

    assert all(all(row) for row in applied)
    record = stores[0].get("t1")
    assert record is not None
    assert record.log is not None
    lines = record.log.system_logs or []
    assert sorted(lines) == sorted(f"{i}/{j}" for i in range(THREADS) for j in range(lines_each))
    for i in range(THREADS):  # each writer's lines stay in the order it wrote them
        mine = [line for line in lines if line.startswith(f"{i}/")]
        assert mine == [f"{i}/{j}" for j in range(lines_each)]


def test_reordered_snapshots_from_racing_reporters_end_at_the_newest(
    open_store: OpenStore,
) -> None:
    stores = [open_store() for _ in range(THREADS)]
    stores[0].create(make_record("t1", 1))
    sequence = list(range(1, 61))
    random.Random(7).shuffle(sequence)

    def report(index: int) -> None:
        for seq in sequence[index::THREADS]:
            stores[index].update(
                "t1", Progress(State.RUNNING, seq=seq, log=TaskLog(start_time=f"snapshot {seq}"))
            )

    run_threads(THREADS, report)

    record = stores[0].get("t1")
    assert record is not None
    assert record.seq == 60
    assert record.log is not None
    assert record.log.start_time == "snapshot 60"


# --- several processes on one SQL database ------------------------------------------------------

PROCESSES = 3
TASKS_PER_PROCESS = 25


def _process_work(url: str, number: int, barrier: threading.Barrier) -> None:
    """One process: opens the (possibly brand-new) database at the same moment as the others,
    then creates, updates and lists tasks, and reports on a task every process shares."""
    barrier.wait(timeout=60)
    store = SqlStore(url, pool_size=1)
    try:
        with contextlib.suppress(ValueError):  # another process created it first
            store.create(make_record("shared", 0, state=State.RUNNING))
        for i in range(TASKS_PER_PROCESS):
            task_id = f"p{number}-{i:03d}"
            store.create(make_record(task_id, 1 + i, tags={"process": str(number)}))
            assert store.update(task_id, Progress(State.RUNNING, seq=1)) is not None
            line = f"{number}/{i}"
            assert store.update("shared", Progress(State.RUNNING, system_logs=(line,))) is not None
            store.list_tasks(TaskQuery(page_size=10, tags=[("process", str(number))]))
    finally:
        store.close()


def test_processes_write_one_database_at_once(sql_url: sa.URL) -> None:
    url = sql_url.render_as_string(hide_password=False)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    processes = [
        context.Process(target=_process_work, args=(url, number, barrier))
        for number in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=240)

    assert [p.exitcode for p in processes] == [0] * PROCESSES, "a writer failed (see stderr)"
    store = SqlStore(url)
    try:
        running = store.find({State.RUNNING})
        assert len(running) == PROCESSES * TASKS_PER_PROCESS + 1
        shared = store.get("shared")
        assert shared is not None
        assert shared.log is not None
        expected = {f"{n}/{i}" for n in range(PROCESSES) for i in range(TASKS_PER_PROCESS)}
        assert set(shared.log.system_logs or []) == expected
    finally:
        store.close()
