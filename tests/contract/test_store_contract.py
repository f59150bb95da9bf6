"""The TaskStore contract, checked against every store (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

import pytest

from tesk.store.base import (
    Cursor,
    TaskDocuments,
    TaskQuery,
    TaskRecord,
    TaskStore,
    documents_of,
)
from tesk.tes.models import ExecutorLog, FileType, TaskLog
from tesk.tes.progress import Progress
from tesk.tes.states import State
from tests.contract.conftest import OpenStore, make_record


def list_all(store: TaskStore, query: TaskQuery) -> list[TaskRecord]:
    """Every page of `query`, followed through next_cursor."""
    records: list[TaskRecord] = []
    after: Cursor | None = query.after
    for _ in range(10_000):
        page = store.list_tasks(_with(query, after=after))
        records += page.records
        if page.next_cursor is None:
            return records
        assert page.records, "a page with a next cursor must not be empty"
        after = page.next_cursor
    raise AssertionError("paging does not end")


def _with(query: TaskQuery, **changes: object) -> TaskQuery:
    fields = {**query.__dict__, **changes}
    return TaskQuery(**fields)


def ids(records: list[TaskRecord]) -> list[str]:
    return [r.id for r in records]


# --- create / get -----------------------------------------------------------------------------


def test_create_then_get_returns_the_record(store: TaskStore) -> None:
    log = TaskLog(start_time="2026-01-01T00:00:00.000000Z", system_logs=["accepted"])
    record = make_record(
        "t1",
        1_700_000_000_000_001,
        name="align sample 7",
        owner="alice",
        tags={"project": "genomes", "sample": "7", "empty": ""},
        inputs=2,
        worker="runner-1",
        log=log,
        seq=3,
    )
    store.create(record)

    got = store.get("t1")

    assert got == record
    assert got is not None
    assert got.task.dump() == record.task.dump()
    assert got.log is not None
    assert got.log.dump() == log.dump()


def test_read_gives_the_documents_of_the_record(store: TaskStore) -> None:
    log = TaskLog(system_logs=["accepted"], logs=[ExecutorLog(exit_code=0, stdout="hi")])
    record = make_record("t1", 7, owner="alice", tags={"k": "v"}, inputs=1, log=log)
    store.create(record)
    store.create(make_record("t2", 8))

    full = store.read("t1")
    minimal = store.read("t1", with_documents=False)
    no_log = store.read("t2")

    assert full == documents_of(record)
    assert full is not None
    assert full.task == record.task.dump()
    assert full.log == log.dump()
    assert minimal == TaskDocuments("t1", State.QUEUED, 7, "alice")
    assert no_log is not None
    assert no_log.log is None
    assert store.read("t3") is None


def test_list_documents_is_the_page_of_list_tasks(store: TaskStore) -> None:
    for number in range(5):
        store.create(make_record(f"t{number}", number, tags={"k": str(number % 2)}))
    query = TaskQuery(page_size=2, tags=[("k", "0")])

    for with_documents in (True, False):
        wanted = _with(query, with_documents=with_documents)
        records = store.list_tasks(wanted)
        documents = store.list_documents(wanted)
        assert [d.id for d in documents.tasks] == ids(records.records)
        assert documents.next_cursor == records.next_cursor
        expected = [documents_of(store.get(r.id), with_documents) for r in records.records]  # type: ignore[arg-type]
        assert documents.tasks == expected


def test_get_of_an_unknown_id_is_none(store: TaskStore) -> None:
    store.create(make_record("t1", 1))
    assert store.get("t2") is None


def test_create_of_an_existing_id_fails_and_keeps_the_first(store: TaskStore) -> None:
    store.create(make_record("t1", 1, name="first"))

    with pytest.raises(ValueError, match="t1"):
        store.create(make_record("t1", 2, name="second", tags={"k": "v"}))

    got = store.get("t1")
    assert got is not None
    assert (got.name, got.created_us, got.tags) == ("first", 1, {})


def test_every_client_of_a_database_sees_the_same_tasks(open_store: OpenStore) -> None:
    first, second = open_store(), open_store()
    first.create(make_record("t1", 1, tags={"k": "v"}))

    assert second.get("t1") == first.get("t1")
    assert second.update("t1", Progress(State.RUNNING, seq=1)) is not None
    got = first.get("t1")
    assert got is not None
    assert got.state is State.RUNNING


# --- listing order and paging -------------------------------------------------------------------


def test_empty_store_lists_nothing(store: TaskStore) -> None:
    page = store.list_tasks(TaskQuery())
    assert page.records == []
    assert page.next_cursor is None


def test_listing_is_newest_first_with_ties_broken_by_id(store: TaskStore) -> None:
    for task_id, created in [("b", 5), ("a", 5), ("c", 5), ("z", 1), ("y", 9), ("A", 5)]:
        store.create(make_record(task_id, created))

    page = store.list_tasks(TaskQuery())

    assert ids(page.records) == ["y", "c", "b", "a", "A", "z"]
    assert page.next_cursor is None


def test_paging_returns_every_task_once_in_order(store: TaskStore) -> None:
    # 13 tasks over 5 creation times: ties span page boundaries.
    for i in range(13):
        store.create(make_record(f"task-{i:02d}", 1000 + i // 3))
    expected = sorted(
        (f"task-{i:02d}" for i in range(13)), key=lambda t: (1000 + int(t[5:]) // 3, t)
    )
    expected.reverse()

    for page_size in [1, 2, 3, 7, 12, 13, 256]:
        first = store.list_tasks(TaskQuery(page_size=page_size))
        everything = list_all(store, TaskQuery(page_size=page_size))

        assert ids(everything) == expected, f"page_size {page_size}"
        assert len(first.records) == min(page_size, 13)
        assert (first.next_cursor is None) == (page_size >= 13)


def test_a_full_last_page_has_no_next_cursor(store: TaskStore) -> None:
    for i in range(4):
        store.create(make_record(f"t{i}", i))

    first = store.list_tasks(TaskQuery(page_size=2))
    assert first.next_cursor == Cursor(2, "t2")
    second = store.list_tasks(TaskQuery(page_size=2, after=first.next_cursor))

    assert ids(second.records) == ["t1", "t0"]
    assert second.next_cursor is None


def test_paging_is_stable_while_tasks_are_created(store: TaskStore) -> None:
    for i in range(10):
        store.create(make_record(f"t{i}", 100 + i))
    first = store.list_tasks(TaskQuery(page_size=4))
    assert ids(first.records) == ["t9", "t8", "t7", "t6"]
    assert first.next_cursor is not None

    # Newer tasks, and one with the cursor's creation time but a greater id: all before the
    # cursor, so later pages must neither repeat nor include them. A task behind the cursor
    # (older) belongs in the later pages.
    store.create(make_record("t10", 200))
    store.create(make_record("t6z", 106))
    store.create(make_record("t5a", 105))
    rest = list_all(store, TaskQuery(page_size=4, after=first.next_cursor))

    assert ids(rest) == ["t5a", "t5", "t4", "t3", "t2", "t1", "t0"]


def test_listing_without_documents_gives_ids_and_states(store: TaskStore) -> None:
    for i in range(5):
        store.create(make_record(f"t{i}", i, name=f"n{i}", tags={"k": str(i)}))
    store.update("t3", Progress(State.RUNNING, seq=1))

    minimal = list_all(store, TaskQuery(page_size=2, with_documents=False))
    full = list_all(store, TaskQuery(page_size=2))

    assert [(r.id, r.state, r.created_us) for r in minimal] == [
        (r.id, r.state, r.created_us) for r in full
    ]
    assert [r.state for r in minimal] == [State.QUEUED, State.RUNNING] + [State.QUEUED] * 3
    assert all(r.task.id == r.id for r in minimal)


def test_a_page_size_below_one_is_refused(store: TaskStore) -> None:
    with pytest.raises(ValueError, match="page_size"):
        store.list_tasks(TaskQuery(page_size=0))


# --- filters ----------------------------------------------------------------------------------


def _filter_fixture(store: TaskStore) -> None:
    rows = [
        ("t01", "align-sample-1", "alice", State.QUEUED, {"project": "p1", "sample": "1"}),
        ("t02", "align-sample-2", "bob", State.RUNNING, {"project": "p1", "sample": "2"}),
        ("t03", "Align-sample-3", "alice", State.COMPLETE, {"project": "p2"}),
        ("t04", "call-variants", "alice", State.RUNNING, {"project": "p2", "flag": ""}),
        ("t05", "100%_done", "carol", State.EXECUTOR_ERROR, {}),
        ("t06", "100 done", "carol", State.QUEUED, {"project": "p1"}),
        ("t07", None, "bob", State.QUEUED, {"project": "p1", "sample": "7"}),
        ("t08", "alignment", None, State.QUEUED, {"Project": "p1"}),
        ("t09", "ärger-\U0001f600", None, State.QUEUED, {}),
        ("t10", "align", "alice", State.QUEUED, {"sample": "1"}),
    ]
    for i, (task_id, name, owner, state, tags) in enumerate(rows):
        store.create(make_record(task_id, 1000 + i, name=name, owner=owner, tags=tags))
        if state is not State.QUEUED:
            assert store.update(task_id, Progress(state)) is not None


FILTERS = [
    (TaskQuery(), "t10 t09 t08 t07 t06 t05 t04 t03 t02 t01"),
    (TaskQuery(state=State.QUEUED), "t10 t09 t08 t07 t06 t01"),
    (TaskQuery(state=State.RUNNING), "t04 t02"),
    (TaskQuery(state=State.CANCELED), ""),
    (TaskQuery(owner="alice"), "t10 t04 t03 t01"),
    (TaskQuery(owner="nobody"), ""),
    (TaskQuery(name_prefix="align"), "t10 t08 t02 t01"),
    (TaskQuery(name_prefix="align-"), "t02 t01"),
    (TaskQuery(name_prefix="Align"), "t03"),
    (TaskQuery(name_prefix="align-sample-2"), "t02"),
    (TaskQuery(name_prefix="align-sample-22"), ""),
    (TaskQuery(name_prefix="100%"), "t05"),
    (TaskQuery(name_prefix="100_"), ""),
    (TaskQuery(name_prefix="100"), "t06 t05"),
    (TaskQuery(name_prefix="ä"), "t09"),
    (TaskQuery(name_prefix="ärger-\U0001f600"), "t09"),
    (TaskQuery(name_prefix=""), "t10 t09 t08 t07 t06 t05 t04 t03 t02 t01"),
    (TaskQuery(tags=[("project", None)]), "t07 t06 t04 t03 t02 t01"),
    (TaskQuery(tags=[("project", "p1")]), "t07 t06 t02 t01"),
    (TaskQuery(tags=[("Project", None)]), "t08"),
    (TaskQuery(tags=[("project", "p1"), ("sample", None)]), "t07 t02 t01"),
    (TaskQuery(tags=[("project", "p1"), ("sample", "2")]), "t02"),
    (TaskQuery(tags=[("sample", "1")]), "t10 t01"),
    (TaskQuery(tags=[("flag", "")]), "t04"),
    (TaskQuery(tags=[("flag", None)]), "t04"),
    (TaskQuery(tags=[("missing", None)]), ""),
    (TaskQuery(state=State.QUEUED, owner="alice", name_prefix="al"), "t10 t01"),
    (TaskQuery(state=State.QUEUED, tags=[("project", "p1")], name_prefix="1"), "t06"),
    (TaskQuery(owner="bob", tags=[("sample", None)]), "t07 t02"),
]


def test_filters(store: TaskStore) -> None:
    # One store for every query (they only read), reporting every query that fails.
    _filter_fixture(store)
    wrong = []

    for query, expected in FILTERS:
        paged = ids(list_all(store, _with(query, page_size=3)))
        minimal = ids(store.list_tasks(_with(query, with_documents=False)).records)
        if paged != expected.split() or minimal != expected.split():
            wrong.append(f"{query}: expected {expected!r}, got {paged} / {minimal}")

    assert not wrong, "\n".join(wrong)


# The table of the TES 1.1 specification (ListTasks, tag_key): an empty filter value matches any
# value; the API passes it to the store as None.
SPEC_TAG_TABLE = [
    ({"foo": "bar"}, {"foo": "bar"}, True),
    ({"foo": "bar"}, {"foo": "bat"}, False),
    ({"foo": ""}, {"foo": ""}, True),
    ({"foo": "bar", "baz": "bat"}, {"foo": "bar", "baz": "bat"}, True),
    ({"foo": "bar"}, {"foo": "bar", "baz": "bat"}, True),
    ({"foo": "bar", "baz": "bat"}, {"foo": "bar"}, False),
    ({"foo": ""}, {"foo": "bar"}, True),
    ({"foo": ""}, {}, False),
]


def test_the_specification_tag_table(store: TaskStore) -> None:
    for row, (_, tags, _) in enumerate(SPEC_TAG_TABLE):
        store.create(make_record(f"row{row}", row, tags=tags))

    for row, (wanted, tags, match) in enumerate(SPEC_TAG_TABLE):
        query = TaskQuery(tags=[(k, v or None) for k, v in wanted.items()])
        found = ids(store.list_tasks(query).records)
        assert (f"row{row}" in found) is match, f"filter {wanted} on tags {tags}"


def test_filters_apply_across_pages(store: TaskStore) -> None:
    for i in range(30):
        state = State.QUEUED if i % 3 else State.COMPLETE
        store.create(make_record(f"t{i:02d}", i, tags={"even": str(i % 2 == 0)}))
        if state is State.COMPLETE:
            store.update(f"t{i:02d}", Progress(state))
    query = TaskQuery(page_size=2, state=State.COMPLETE, tags=[("even", "True")])

    found = list_all(store, query)

    assert ids(found) == ["t24", "t18", "t12", "t06", "t00"]


# --- update -----------------------------------------------------------------------------------


def _log(*lines: str, exit_code: int | None = None) -> TaskLog:
    logs = [] if exit_code is None else [ExecutorLog(exit_code=exit_code, stdout="out")]
    return TaskLog(logs=logs, system_logs=list(lines) or None)


def test_update_applies_newer_reports_and_ignores_older_ones(store: TaskStore) -> None:
    store.create(make_record("t1", 1))

    running = store.update("t1", Progress(State.RUNNING, seq=2, log=_log("started")))
    stale = store.update("t1", Progress(State.INITIALIZING, seq=1, log=_log("staging")))
    duplicate = store.update("t1", Progress(State.RUNNING, seq=2, log=_log("again")))

    assert running is not None
    assert (running.state, running.seq) == (State.RUNNING, 2)
    assert stale is None
    assert duplicate is None
    assert store.get("t1") == running


def test_update_returns_what_get_returns(store: TaskStore) -> None:
    store.create(make_record("t1", 1, name="n", owner="o", tags={"a": "b"}, inputs=1))

    updated = store.update(
        "t1", Progress(State.RUNNING, seq=1, log=_log("x", exit_code=0)), worker="w"
    )

    assert updated is not None
    assert updated == store.get("t1")
    assert (updated.name, updated.owner, updated.tags, updated.worker) == (
        "n",
        "o",
        {"a": "b"},
        "w",
    )


def test_a_newer_snapshot_replaces_the_log(store: TaskStore) -> None:
    store.create(make_record("t1", 1))
    store.update("t1", Progress(State.RUNNING, seq=1, log=_log(exit_code=0)))

    done = store.update("t1", Progress(State.COMPLETE, seq=2, log=TaskLog(end_time="e")))

    assert done is not None
    assert done.log is not None
    assert (done.log.logs, done.log.end_time) == ([], "e")


FORBIDDEN = [
    (State.RUNNING, State.QUEUED),
    (State.RUNNING, State.INITIALIZING),
    (State.COMPLETE, State.RUNNING),
    (State.COMPLETE, State.COMPLETE),
    (State.EXECUTOR_ERROR, State.COMPLETE),
    (State.CANCELED, State.CANCELING),
    (State.CANCELING, State.COMPLETE),
    (State.CANCELING, State.RUNNING),
    (State.QUEUED, State.CANCELED),
]


def test_forbidden_transitions_change_nothing(store: TaskStore) -> None:
    for number, (start, _) in enumerate(FORBIDDEN):
        store.create(make_record(f"t{number}", number, state=start, seq=5, log=_log("kept")))

    for number, (start, target) in enumerate(FORBIDDEN):
        task_id = f"t{number}"
        before = store.get(task_id)
        assert store.update(task_id, Progress(target, seq=6, log=_log("new"))) is None, start
        assert store.update(task_id, Progress(target, system_logs=("oob",))) is None, start
        assert store.get(task_id) == before


def test_out_of_band_reports_keep_the_sequence(store: TaskStore) -> None:
    store.create(make_record("t1", 1))
    store.update("t1", Progress(State.RUNNING, seq=4))

    canceling = store.update("t1", Progress(State.CANCELING, system_logs=("cancel requested",)))
    late = store.update("t1", Progress(State.RUNNING, seq=5))
    canceled = store.update("t1", Progress(State.CANCELED))

    assert canceling is not None
    assert (canceling.state, canceling.seq) == (State.CANCELING, 4)
    assert late is None
    assert canceled is not None
    assert canceled.state is State.CANCELED


def test_expected_states_guard_the_update(store: TaskStore) -> None:
    store.create(make_record("t1", 1))

    refused = store.update("t1", Progress(State.CANCELING), expected={State.RUNNING})
    claimed = store.update(
        "t1", Progress(State.INITIALIZING), expected={State.QUEUED}, worker="runner-a"
    )
    again = store.update(
        "t1", Progress(State.INITIALIZING), expected={State.QUEUED}, worker="runner-b"
    )

    assert refused is None
    assert claimed is not None
    assert (claimed.state, claimed.worker) == (State.INITIALIZING, "runner-a")
    assert again is None
    got = store.get("t1")
    assert got is not None
    assert got.worker == "runner-a"


def test_worker_is_kept_unless_given(store: TaskStore) -> None:
    store.create(make_record("t1", 1, worker="w1"))

    kept = store.update("t1", Progress(State.INITIALIZING, seq=1))
    moved = store.update("t1", Progress(State.RUNNING, seq=2), worker="w2")

    assert kept is not None
    assert kept.worker == "w1"
    assert moved is not None
    assert moved.worker == "w2"


def test_update_of_an_unknown_task_is_none(store: TaskStore) -> None:
    assert store.update("missing", Progress(State.RUNNING, seq=1)) is None


def test_system_logs_from_every_source_are_merged(store: TaskStore) -> None:
    store.create(make_record("t1", 1))
    store.update("t1", Progress(State.INITIALIZING, seq=1, log=_log("staging inputs")))
    store.update("t1", Progress(State.INITIALIZING, system_logs=("pod scheduled",)))
    store.update(
        "t1",
        Progress(State.RUNNING, seq=2, log=_log("staging inputs", "running executor 0")),
    )

    done = store.update(
        "t1",
        Progress(State.SYSTEM_ERROR, seq=3, log=_log("staging inputs"), system_logs=("OOM",)),
    )

    assert done is not None
    assert done.log is not None
    assert done.log.system_logs == [
        "staging inputs",
        "pod scheduled",
        "running executor 0",
        "OOM",
    ]


def test_input_types_are_recorded_in_the_task_document(store: TaskStore) -> None:
    store.create(make_record("t1", 1, inputs=3, tags={"k": "v"}))
    types = (FileType.FILE, FileType.DIRECTORY, FileType.FILE)

    staged = store.update("t1", Progress(State.RUNNING, seq=1, input_types=types))
    later = store.update("t1", Progress(State.COMPLETE, seq=2))

    assert staged is not None
    assert later is not None
    for record in (staged, later, store.get("t1")):
        assert record is not None
        assert [i.type for i in record.task.inputs or []] == list(types)
        assert [i.path for i in record.task.inputs or []] == [
            f"/data/in/{i}.fastq" for i in range(3)
        ]
        assert record.task.dump()["inputs"][1]["type"] == "DIRECTORY"
        assert record.tags == {"k": "v"}


def test_an_ignored_report_does_not_record_input_types(store: TaskStore) -> None:
    store.create(make_record("t1", 1, inputs=1, state=State.COMPLETE))

    assert store.update("t1", Progress(State.RUNNING, input_types=(FileType.FILE,))) is None

    got = store.get("t1")
    assert got is not None
    assert got.task.inputs is not None
    assert got.task.inputs[0].type is None


# --- find, ping -------------------------------------------------------------------------------


def test_find_returns_tasks_in_the_states_oldest_first(store: TaskStore) -> None:
    for task_id, created, worker in [
        ("c", 3, "w1"),
        ("a", 1, "w1"),
        ("b", 2, "w2"),
        ("d", 2, None),
    ]:
        store.create(make_record(task_id, created, worker=worker))
    store.update("c", Progress(State.RUNNING))
    store.update("b", Progress(State.COMPLETE))

    assert ids(store.find({State.QUEUED, State.RUNNING})) == ["a", "d", "c"]
    assert ids(store.find({State.QUEUED, State.RUNNING}, worker="w1")) == ["a", "c"]
    assert ids(store.find({State.COMPLETE}, worker="w1")) == []
    assert ids(store.find({State.COMPLETE})) == ["b"]
    assert store.find(set()) == []
    found = store.find({State.RUNNING})
    assert found == [store.get("c")]


# --- claim ------------------------------------------------------------------------------------


def test_claim_takes_the_oldest_queued_tasks_up_to_the_limit(store: TaskStore) -> None:
    for task_id, created in [("c", 3), ("a", 1), ("d", 4), ("b", 2), ("e", 5)]:
        store.create(make_record(task_id, created, tags={"k": task_id}))
    store.update("a", Progress(State.RUNNING), worker="elsewhere")
    store.update("d", Progress(State.CANCELING))

    claimed = store.claim("runner-1", 2)

    assert ids(claimed) == ["b", "c"]
    for record in claimed:
        assert (record.state, record.worker) == (State.INITIALIZING, "runner-1")
        assert record == store.get(record.id)
    assert ids(store.find({State.QUEUED})) == ["e"]
    running = store.get("a")
    assert running is not None
    assert (running.state, running.worker) == (State.RUNNING, "elsewhere")
    assert ids(store.claim("runner-2", 5)) == ["e"]
    assert store.claim("runner-2", 5) == []


def test_claims_are_fair_across_owners_so_a_burst_does_not_starve_a_single_task(
    store: TaskStore,
) -> None:
    # Alice queued a burst long before Bob's one task; she already runs two of hers elsewhere.
    for i in range(50):
        store.create(make_record(f"alice-{i:02}", 100 + i, owner="alice"))
    store.create(make_record("bob-0", 10_000, owner="bob"))
    for task_id in ("alice-00", "alice-01"):
        store.update(task_id, Progress(State.RUNNING), worker="elsewhere")

    # One free slot: Bob runs nothing, so his task goes first, however young.
    assert ids(store.claim("runner-1", 1)) == ["bob-0"]
    # Then Carol's and Alice's tasks take turns by what each owner runs, oldest first in each.
    store.create(make_record("carol-0", 20_000, owner="carol"))
    store.create(make_record("carol-1", 20_001, owner="carol"))
    assert ids(store.claim("runner-1", 3)) == ["carol-0", "carol-1", "alice-02"]
    assert ids(store.claim("runner-1", 2)) == ["alice-03", "alice-04"]


def test_with_one_slot_owners_take_turns_least_recently_served_first(store: TaskStore) -> None:
    for i in range(4):
        store.create(make_record(f"alice-{i}", 100 + i, owner="alice"))
    store.create(make_record("bob-0", 10_000, owner="bob"))
    store.create(make_record("bob-1", 10_001, owner="bob"))
    order = []
    for _ in range(6):
        # One slot: whatever was claimed ends before the next claim, so nobody runs anything.
        (claimed,) = store.claim("runner-1", 1)
        order.append(claimed.id)
        store.update(claimed.id, Progress(State.COMPLETE))
    assert order == ["alice-0", "bob-0", "alice-1", "bob-1", "alice-2", "alice-3"]


def test_without_owners_claims_are_oldest_first(store: TaskStore) -> None:
    for task_id, created in [("c", 3), ("a", 1), ("b", 2)]:
        store.create(make_record(task_id, created))
    assert ids(store.claim("runner-1", 3)) == ["a", "b", "c"]


def test_claim_of_nothing_changes_nothing(store: TaskStore) -> None:
    store.create(make_record("a", 1))
    assert store.claim("runner-1", 0) == []
    record = store.get("a")
    assert record is not None
    assert (record.state, record.worker) == (State.QUEUED, None)


def test_ping_succeeds_on_a_reachable_store(store: TaskStore) -> None:
    store.ping()


def test_count_owned_counts_one_owners_tasks_in_the_given_states(store: TaskStore) -> None:
    for task_id, owner, state in [
        ("a1", "alice", State.QUEUED),
        ("a2", "alice", State.RUNNING),
        ("a3", "alice", State.COMPLETE),
        ("b1", "bob", State.QUEUED),
        ("n1", None, State.QUEUED),
    ]:
        store.create(make_record(task_id, len(task_id), owner=owner))
        if state != State.QUEUED:
            store.update(task_id, Progress(state))
    active = {State.QUEUED, State.INITIALIZING, State.RUNNING, State.CANCELING}
    assert store.count_owned("alice", active) == 2
    assert store.count_owned("alice", {State.COMPLETE}) == 1
    assert store.count_owned("bob", active) == 1
    assert store.count_owned(None, active) == 1
    assert store.count_owned("carol", active) == 0
    assert store.count_owned("alice", set()) == 0
