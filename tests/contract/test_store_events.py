"""Task events of the TaskStore contract, checked against memory, SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from tesk.store.base import EventQuery, TaskStore
from tesk.store.sql import SqlStore
from tesk.tes.events import TaskEvent
from tesk.tes.models import ExecutorLog, TaskLog
from tesk.tes.progress import Progress
from tesk.tes.states import State
from tests.contract.conftest import OpenStore, make_record

T0 = "2026-01-01T00:00:00.000000Z"
T1 = "2026-01-01T00:00:01.000000Z"
T2 = "2026-01-01T00:00:02.000000Z"


def summary(found: list[TaskEvent]) -> list[tuple[str, str, int | None, int | None]]:
    return [(e.kind.value, e.state.value, e.executor, e.exit_code) for e in found]


def run_to_complete(store: TaskStore, task_id: str) -> None:
    """The reports of the engine for a task with two executors, as the local runner sends them."""
    first = ExecutorLog(start_time=T0, end_time=T1, exit_code=0)
    second = ExecutorLog(start_time=T1, end_time=T2, exit_code=3)
    store.update(task_id, Progress(State.INITIALIZING, seq=1, log=TaskLog(start_time=T0)))
    store.update(task_id, Progress(State.RUNNING, seq=2, log=TaskLog(start_time=T0)))
    store.update(task_id, Progress(State.RUNNING, seq=3, log=TaskLog(logs=[first])))
    store.update(task_id, Progress(State.RUNNING, seq=4, log=TaskLog(logs=[first, second])))
    store.update(task_id, Progress(State.COMPLETE, seq=5, log=TaskLog(logs=[first, second])))


def test_a_task_has_its_history_of_events_in_order(store: TaskStore) -> None:
    store.create(make_record("t1", 1_700_000_000_000_000))

    run_to_complete(store, "t1")
    found = store.events(EventQuery(task_id="t1"))

    assert summary(found) == [
        ("state", "QUEUED", None, None),
        ("state", "INITIALIZING", None, None),
        ("state", "RUNNING", None, None),
        ("executor_started", "RUNNING", 0, None),
        ("executor_ended", "RUNNING", 0, 0),
        ("executor_started", "RUNNING", 1, None),
        ("executor_ended", "RUNNING", 1, 3),
        ("state", "COMPLETE", None, None),
    ]
    assert [e.id for e in found] == sorted(e.id for e in found)
    assert found[0].time_us == 1_700_000_000_000_000
    assert found[3].time_us == 1_767_225_600_000_000  # the executor's own start time
    assert found[-1].terminal
    assert not any(e.terminal for e in found[:-1])


def test_an_executor_log_that_appears_before_it_ends_gives_two_events(store: TaskStore) -> None:
    store.create(make_record("t1", 1))
    running = ExecutorLog(start_time=T0, exit_code=0)
    done = ExecutorLog(start_time=T0, end_time=T1, exit_code=0)

    store.update("t1", Progress(State.RUNNING, seq=1, log=TaskLog(logs=[running])))
    store.update("t1", Progress(State.RUNNING, seq=2, log=TaskLog(logs=[running])))
    store.update("t1", Progress(State.RUNNING, seq=3, log=TaskLog(logs=[done])))

    assert summary(store.events(EventQuery(task_id="t1")))[1:] == [
        ("executor_started", "RUNNING", 0, None),
        ("state", "RUNNING", None, None),
        ("executor_ended", "RUNNING", 0, 0),
    ]


def test_a_refused_or_repeated_report_writes_no_event(store: TaskStore) -> None:
    store.create(make_record("t1", 1))
    store.update("t1", Progress(State.RUNNING, seq=2))

    store.update("t1", Progress(State.INITIALIZING, seq=1))  # older
    store.update("t1", Progress(State.RUNNING, seq=3))  # no change
    store.update("t1", Progress(State.CANCELING), expected={State.QUEUED})  # not expected

    assert summary(store.events(EventQuery(task_id="t1"))) == [
        ("state", "QUEUED", None, None),
        ("state", "RUNNING", None, None),
    ]


def test_claims_and_cancels_write_their_events(store: TaskStore) -> None:
    store.create(make_record("t1", 1))
    store.create(make_record("t2", 2))

    store.claim("runner-1", 1)
    store.update("t2", Progress(State.CANCELING), expected={State.QUEUED})
    store.update("t2", Progress(State.CANCELED))

    everything = store.events(EventQuery())
    assert [(e.task_id, e.state.value) for e in everything] == [
        ("t1", "QUEUED"),
        ("t2", "QUEUED"),
        ("t1", "INITIALIZING"),
        ("t2", "CANCELING"),
        ("t2", "CANCELED"),
    ]


def test_reads_resume_after_an_id_and_stop_at_a_bound(store: TaskStore) -> None:
    store.create(make_record("t1", 1))
    run_to_complete(store, "t1")
    every = store.events(EventQuery())
    ids = [e.id for e in every]

    assert [e.id for e in store.events(EventQuery(after=ids[2]))] == ids[3:]
    assert [e.id for e in store.events(EventQuery(after=ids[2], up_to=ids[4]))] == ids[3:5]
    assert [e.id for e in store.events(EventQuery(after=ids[0], limit=2))] == ids[1:3]
    assert store.events(EventQuery(after=ids[-1])) == []
    assert store.last_event_id() == ids[-1]
    marks = store.event_marks(ids[5], 10)
    assert [(m.id, m.task_id) for m in marks] == [(i, "t1") for i in ids[6:]]
    assert [m.time_us for m in marks] == [e.time_us for e in every[6:]]


def test_an_empty_store_has_no_events(store: TaskStore) -> None:
    assert store.last_event_id() == 0
    assert store.events(EventQuery()) == []
    assert store.event_marks(0, 10) == []


def test_events_are_filtered_like_list_tasks(store: TaskStore) -> None:
    store.create(make_record("a", 1, name="align-1", owner="alice", tags={"p": "x", "q": "1"}))
    store.create(make_record("b", 2, name="align-2", owner="bob", tags={"p": "y"}))
    store.create(make_record("c", 3, name="call-1", owner="alice", tags={"p": "x"}))
    for task_id in ("a", "b", "c"):
        store.update(task_id, Progress(State.RUNNING))

    def tasks_of(query: EventQuery) -> list[tuple[str, str]]:
        return [(e.task_id, e.state.value) for e in store.events(query)]

    assert tasks_of(EventQuery(owner="alice")) == [
        ("a", "QUEUED"),
        ("c", "QUEUED"),
        ("a", "RUNNING"),
        ("c", "RUNNING"),
    ]
    assert tasks_of(EventQuery(state=State.RUNNING, name_prefix="align")) == [
        ("a", "RUNNING"),
        ("b", "RUNNING"),
    ]
    assert tasks_of(EventQuery(tags=[("p", "x"), ("q", None)])) == [
        ("a", "QUEUED"),
        ("a", "RUNNING"),
    ]
    assert tasks_of(EventQuery(tags=[("p", None)], owner="bob")) == [
        ("b", "QUEUED"),
        ("b", "RUNNING"),
    ]
    assert tasks_of(EventQuery(task_id="c", state=State.QUEUED)) == [("c", "QUEUED")]
    assert tasks_of(EventQuery(name_prefix="zzz")) == []


def test_concurrent_writers_all_get_their_events(open_store: OpenStore) -> None:
    stores = [open_store() for _ in range(4)]
    for number in range(8):
        stores[0].create(make_record(f"t{number}", number))

    def drive(store: TaskStore, numbers: range) -> None:
        for number in numbers:
            task_id = f"t{number}"
            store.update(task_id, Progress(State.INITIALIZING))
            store.update(task_id, Progress(State.RUNNING))
            store.update(task_id, Progress(State.COMPLETE))

    threads = [
        threading.Thread(target=drive, args=(store, range(i * 2, i * 2 + 2)))
        for i, store in enumerate(stores)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    every = stores[1].events(EventQuery(limit=1000))
    assert len({e.id for e in every}) == len(every) == 8 * 4
    for number in range(8):
        mine = [e.state.value for e in every if e.task_id == f"t{number}"]
        assert mine == ["QUEUED", "INITIALIZING", "RUNNING", "COMPLETE"]
    assert stores[2].last_event_id() == max(e.id for e in every)


def test_a_database_from_before_events_gets_the_table_when_opened(sql_url: sa.URL) -> None:
    older = SqlStore(sql_url, pool_size=1)
    older.create(make_record("old", 1))
    with older._engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE task_events"))
    older.close()

    store = SqlStore(sql_url, pool_size=1)
    try:
        store.update("old", Progress(State.RUNNING))
        assert summary(store.events(EventQuery(task_id="old"))) == [
            ("state", "RUNNING", None, None)
        ]
    finally:
        store.close()
