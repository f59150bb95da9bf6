"""Attempts: the store's requeue under the retry policy, on every store (memory, SQLite,
PostgreSQL), and the migration that adds the `attempts` column to an existing database."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from tesk.store.base import TaskQuery, TaskStore, documents_of
from tesk.store.database import parse_url
from tesk.store.sql import SqlStore
from tesk.tes.models import ExecutorLog, Resources, TaskLog, View
from tesk.tes.progress import AttemptFailure, Cause, Progress
from tesk.tes.retries import RetryPolicy, retried
from tesk.tes.states import State
from tesk.tes.views import render_document
from tests.contract.conftest import OpenStore, make_record

POLICY = RetryPolicy(max_attempts=3)
EVICTED = AttemptFailure(Cause.CAPACITY_LOST, "pod tesk-t1-ex-0 was evicted: node pressure")


def snapshot(attempt: int, seq: int, state: State, *lines: str, code: int = 0) -> Progress:
    log = TaskLog(
        logs=[ExecutorLog(exit_code=code, stdout=f"attempt {attempt}")],
        metadata={"usage.wall_seconds": f"{attempt}.000"},
        system_logs=list(lines) or None,
    )
    failure = EVICTED if state == State.PREEMPTED else None
    return Progress(state, seq=seq, log=log, attempt=attempt, failure=failure)


def test_a_preempted_attempt_is_archived_and_the_task_queued_again(store: TaskStore) -> None:
    store.create(make_record("t1", 1))
    store.update("t1", Progress(State.INITIALIZING), worker="runner-1")
    store.update("t1", snapshot(1, 1, State.RUNNING))

    report = snapshot(1, 2, State.PREEMPTED, "executor 0 lost its capacity")
    requeued = store.update("t1", report, retries=POLICY)

    assert requeued is not None
    assert retried(report, requeued.state)
    assert (requeued.state, requeued.log, requeued.worker, requeued.seq) == (
        State.QUEUED,
        None,
        None,
        2,
    )
    assert requeued.attempt == 2
    [first] = requeued.attempts
    assert first.logs[0].stdout == "attempt 1"
    assert first.metadata == {"usage.wall_seconds": "1.000"}
    assert first.system_logs == [
        "executor 0 lost its capacity",
        f"attempt 1 lost its capacity ({EVICTED.detail}); retried as attempt 2",
    ]
    assert store.get("t1") == requeued
    assert store.find({State.QUEUED}) == [requeued]


def test_late_reports_of_an_earlier_attempt_are_ignored(store: TaskStore) -> None:
    store.create(make_record("t1", 1))
    store.update("t1", snapshot(1, 1, State.RUNNING))
    store.update("t1", snapshot(1, 2, State.PREEMPTED), retries=POLICY)
    [claimed] = store.claim("runner-1", 1)
    assert claimed.attempt == 2
    store.update("t1", snapshot(2, 3, State.RUNNING))

    # Attempt 1's taskmaster wrote once more, with a sequence number newer than any so far.
    assert store.update("t1", snapshot(1, 9, State.COMPLETE)) is None
    assert store.update("t1", snapshot(1, 9, State.PREEMPTED), retries=POLICY) is None

    done = store.update("t1", snapshot(2, 4, State.COMPLETE), retries=POLICY)
    assert done is not None
    assert done.state == State.COMPLETE
    assert done.log is not None
    assert done.log.logs[0].stdout == "attempt 2"
    assert len(done.attempts) == 1


def test_the_last_attempt_ends_preempted(store: TaskStore) -> None:
    store.create(make_record("t1", 1))
    for attempt in (1, 2, 3):
        [claimed] = store.claim("runner-1", 1)
        assert claimed.attempt == attempt
        ended = store.update("t1", snapshot(attempt, attempt, State.PREEMPTED), retries=POLICY)
        assert ended is not None

    assert ended.state == State.PREEMPTED
    assert [len(log.system_logs or []) for log in ended.attempts] == [1, 1]
    assert ended.log is not None
    assert ended.log.logs[0].stdout == "attempt 3"
    assert store.claim("runner-1", 1) == []


def test_a_task_asks_for_fewer_attempts_with_max_attempts(store: TaskStore) -> None:
    record = make_record("t1", 1)
    record.task.resources = Resources(backend_parameters={"MAX_ATTEMPTS": "1"})
    store.create(record)

    ended = store.update("t1", snapshot(1, 1, State.PREEMPTED), retries=POLICY)

    assert ended is not None
    assert (ended.state, ended.attempts) == (State.PREEMPTED, ())


def test_only_what_the_policy_retries_is_retried(store: TaskStore) -> None:
    could_not_run = AttemptFailure(Cause.SYSTEM_ERROR, "executor 0: no such image")
    reports = {
        "failed": Progress(State.EXECUTOR_ERROR, seq=1, attempt=1, failure=EVICTED),
        "system": Progress(State.SYSTEM_ERROR, seq=1, attempt=1, failure=could_not_run),
        "system-retried": Progress(State.SYSTEM_ERROR, seq=1, attempt=1, failure=could_not_run),
        "no-cause": Progress(State.PREEMPTED, seq=1, attempt=1),
        "no-policy": snapshot(1, 1, State.PREEMPTED),
    }
    policies = {
        "system-retried": RetryPolicy(max_attempts=3, system_errors=True),
        "no-policy": None,
    }
    for number, (task_id, report) in enumerate(reports.items()):
        store.create(make_record(task_id, number))
        store.update(task_id, report, retries=policies.get(task_id, POLICY))

    states = {task_id: store.get(task_id).state for task_id in reports}  # type: ignore[union-attr]
    assert states == {
        "failed": State.EXECUTOR_ERROR,
        "system": State.SYSTEM_ERROR,
        "system-retried": State.QUEUED,
        "no-cause": State.PREEMPTED,
        "no-policy": State.PREEMPTED,
    }


def test_a_canceling_task_is_not_retried(store: TaskStore) -> None:
    store.create(make_record("t1", 1))
    store.update("t1", snapshot(1, 1, State.RUNNING))
    store.update("t1", Progress(State.CANCELING))

    assert store.update("t1", snapshot(1, 2, State.PREEMPTED), retries=POLICY) is None
    assert store.update("t1", Progress(State.CANCELED)) is not None
    got = store.get("t1")
    assert got is not None
    assert (got.state, got.attempts) == (State.CANCELED, ())


def test_views_serve_every_attempt_in_order(store: TaskStore) -> None:
    store.create(make_record("t1", 1))
    store.update("t1", snapshot(1, 1, State.PREEMPTED, "lost"), retries=POLICY)
    store.update("t1", snapshot(2, 2, State.RUNNING, "second"), retries=POLICY)

    found = store.read("t1")
    [listed] = store.list_documents(TaskQuery()).tasks
    record = store.get("t1")
    assert record is not None
    assert found == listed == documents_of(record)
    assert found is not None

    def view(kind: View) -> dict[str, object]:
        again = store.read("t1")
        assert again is not None
        return render_document(
            kind,
            task_id="t1",
            state=again.state,
            task=again.task,
            log=again.log,
            attempts=again.attempts,
        )

    full, basic = view(View.FULL), view(View.BASIC)
    assert [log["logs"][0]["stdout"] for log in full["logs"]] == ["attempt 1", "attempt 2"]  # type: ignore[index]
    assert full["logs"][0]["system_logs"][-1].endswith("retried as attempt 2")  # type: ignore[index]
    assert [sorted(log) for log in basic["logs"]] == [["logs", "metadata", "outputs"]] * 2  # type: ignore[union-attr]
    assert view(View.MINIMAL) == {"id": "t1", "state": "RUNNING"}


def test_a_requeued_task_has_no_current_log_until_its_next_attempt_reports(
    open_store: OpenStore,
) -> None:
    store = open_store()
    store.create(make_record("t1", 1))
    store.update("t1", snapshot(1, 1, State.PREEMPTED), retries=POLICY)

    found = open_store().read("t1")

    assert found is not None
    assert found.log is None
    assert found.attempts is not None
    assert len(found.attempts) == 1


# --- migration of a database made before attempts were kept --------------------------------


OLD_TASKS = """CREATE TABLE tasks (
    id VARCHAR NOT NULL PRIMARY KEY, name VARCHAR, state VARCHAR(16) NOT NULL, owner VARCHAR,
    created_us BIGINT NOT NULL, seq BIGINT NOT NULL, version BIGINT NOT NULL, worker VARCHAR,
    task JSON NOT NULL, log JSON)"""
OLD_TASK = (
    "INSERT INTO tasks VALUES ('old', NULL, 'RUNNING', NULL, 5, 3, 7, 'runner-1',"
    ' \'{"id":"old","executors":[{"image":"alpine","command":["true"]}]}\','
    ' \'{"logs":[],"outputs":[],"system_logs":["from before"]}\')'
)


def test_opening_an_older_database_adds_the_attempts_column(sql_url: sa.URL) -> None:
    engine = sa.create_engine(parse_url(sql_url), poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text(OLD_TASKS))
        conn.execute(sa.text(OLD_TASK))
    try:
        first, second = SqlStore(sql_url), SqlStore(sql_url)  # the second finds it added
        with engine.connect() as conn:
            columns = {c["name"] for c in sa.inspect(conn).get_columns("tasks")}
        old = first.get("old")
        assert old is not None
        assert (old.state, old.seq, old.attempts) == (State.RUNNING, 3, ())
        requeued = second.update(
            "old", snapshot(1, 4, State.PREEMPTED), retries=POLICY, expected={State.RUNNING}
        )
        assert requeued is not None
        assert requeued.state == State.QUEUED
        read = first.read("old")
        assert read is not None
        assert read.attempts is not None
        assert read.attempts[0]["system_logs"][-1].endswith("retried as attempt 2")
        first.close()
        second.close()
    finally:
        engine.dispose()
    assert "attempts" in columns
