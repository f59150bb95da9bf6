"""TaskStore.count_by_state (what /metrics reports as tesk_tasks), against every store."""

from __future__ import annotations

from tesk.store.base import TaskStore
from tesk.tes.progress import Progress
from tesk.tes.states import State
from tests.contract.conftest import OpenStore, make_record


def test_counts_follow_creates_and_updates(open_store: OpenStore) -> None:
    writer, reader = open_store(), open_store()
    for index, state in enumerate(
        [State.QUEUED, State.QUEUED, State.RUNNING, State.COMPLETE, State.QUEUED]
    ):
        writer.create(make_record(f"t{index}", index, state=state))
    wanted = (State.QUEUED, State.RUNNING, State.CANCELING)
    assert reader.count_by_state(wanted) == {
        State.QUEUED: 3,
        State.RUNNING: 1,
        State.CANCELING: 0,
    }
    assert writer.update("t0", Progress(State.CANCELING), expected={State.QUEUED})
    assert writer.update("t2", Progress(State.COMPLETE, seq=1))
    assert reader.count_by_state(wanted) == {
        State.QUEUED: 2,
        State.RUNNING: 0,
        State.CANCELING: 1,
    }
    assert reader.count_by_state({State.COMPLETE}) == {State.COMPLETE: 2}


def test_counting_nothing(store: TaskStore) -> None:
    assert store.count_by_state(()) == {}
    assert store.count_by_state({State.RUNNING}) == {State.RUNNING: 0}
