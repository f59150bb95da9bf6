"""TES 1.0 clients under /v1 are shown TES 1.0 states; /ga4gh/tes/v1 shows TES 1.1 states.

TES 1.0 had neither CANCELING nor PREEMPTED, and py-tes 0.4 (which the Snakemake and Toil plugins
pin) fails to parse a task or a listing that holds one (docs/api.md, "Older clients").
"""

from __future__ import annotations

from typing import Any

import pytest
from connexion import App

from tesk.tes.progress import Progress
from tesk.tes.states import State
from tests.unit.api.support import Api, SpecSchemas, attach, new_app, task_body

TES_1_1 = "/ga4gh/tes/v1"
TES_1_0 = "/v1"

TES_1_0_STATES = {
    "UNKNOWN",
    "QUEUED",
    "INITIALIZING",
    "RUNNING",
    "PAUSED",
    "COMPLETE",
    "EXECUTOR_ERROR",
    "SYSTEM_ERROR",
    "CANCELED",
}

# What a stored task goes through to reach each state TESK stores.
PATHS: dict[State, tuple[State, ...]] = {
    State.QUEUED: (),
    State.INITIALIZING: (State.INITIALIZING,),
    State.RUNNING: (State.INITIALIZING, State.RUNNING),
    State.CANCELING: (State.RUNNING, State.CANCELING),
    State.CANCELED: (State.RUNNING, State.CANCELING, State.CANCELED),
    State.PREEMPTED: (State.RUNNING, State.PREEMPTED),
    State.COMPLETE: (State.RUNNING, State.COMPLETE),
    State.EXECUTOR_ERROR: (State.RUNNING, State.EXECUTOR_ERROR),
    State.SYSTEM_ERROR: (State.SYSTEM_ERROR,),
}

SHOWN_UNDER_V1 = {
    **{state: state.value for state in PATHS},
    State.CANCELING: "RUNNING",
    State.PREEMPTED: "SYSTEM_ERROR",
}

VIEWS = (None, "MINIMAL", "BASIC", "FULL")


@pytest.fixture(scope="module")
def app() -> App:
    return new_app()


@pytest.fixture
def api(app: App) -> Api:
    return attach(app)


@pytest.fixture(scope="module")
def schemas(app: App) -> SpecSchemas:
    return SpecSchemas.served_by(app.app.test_client(), TES_1_0)


def task_in(api: Api, state: State, name: str = "t") -> str:
    task_id = api.service.create(task_body(name=name, inputs=[{"path": "/d/in", "content": "x"}]))
    for step in PATHS[state]:
        assert api.store.update(task_id, Progress(state=step, system_logs=(f"now {step}",)))
    return task_id


def fetch(api: Api, path: str) -> Any:
    response = api.client.get(path)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def listed(api: Api, base: str, query: str = "") -> list[tuple[str, str]]:
    """(id, state) of every task ListTasks returns under `base`, following every page."""
    found: list[tuple[str, str]] = []
    token = ""
    while True:
        page = fetch(api, f"{base}/tasks?{query}{token}")
        found += [(task["id"], task["state"]) for task in page["tasks"]]
        if "next_page_token" not in page:
            return found
        token = f"&page_token={page['next_page_token']}"


def view_query(view: str | None) -> str:
    return f"?view={view}" if view else ""


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("state", list(PATHS))
def test_get_task_under_v1_shows_the_nearest_tes_1_0_state(
    api: Api, schemas: SpecSchemas, state: State, view: str | None
) -> None:
    task_id = task_in(api, state)
    old = fetch(api, f"{TES_1_0}/tasks/{task_id}{view_query(view)}")
    new = fetch(api, f"{TES_1_1}/tasks/{task_id}{view_query(view)}")
    assert old["state"] == SHOWN_UNDER_V1[state]
    assert old["state"] in TES_1_0_STATES
    assert new["state"] == state.value
    # Only the state differs: logs, inputs and the rest are the same document.
    assert {**old, "state": new["state"]} == new
    schemas.check("tesTask", old, minimal=view in (None, "MINIMAL"))


@pytest.mark.parametrize("view", VIEWS)
def test_list_tasks_under_v1_shows_tes_1_0_states_in_every_view(
    api: Api, schemas: SpecSchemas, view: str | None
) -> None:
    ids = {state: task_in(api, state) for state in PATHS}
    query = f"view={view}&" if view else ""
    old = dict(listed(api, TES_1_0, query))
    new = dict(listed(api, TES_1_1, query))
    assert old == {task_id: SHOWN_UNDER_V1[state] for state, task_id in ids.items()}
    assert new == {task_id: state.value for state, task_id in ids.items()}
    page = fetch(api, f"{TES_1_0}/tasks?{query}")
    schemas.check("tesListTasksResponse", page, minimal=view in (None, "MINIMAL"))


def test_state_filter_under_v1_finds_the_tasks_shown_with_that_state(api: Api) -> None:
    for state in PATHS:
        task_in(api, state)
    shown = listed(api, TES_1_0)
    for state in State:
        expected = [entry for entry in shown if entry[1] == state.value]
        assert listed(api, TES_1_0, f"state={state.value}&") == expected, state


def test_state_filter_under_v1_maps_the_tes_1_1_states(api: Api) -> None:
    ids = {state: task_in(api, state) for state in PATHS}

    def found(base: str, state: str) -> set[str]:
        return {task_id for task_id, _ in listed(api, base, f"state={state}&")}

    assert found(TES_1_0, "SYSTEM_ERROR") == {ids[State.SYSTEM_ERROR], ids[State.PREEMPTED]}
    assert found(TES_1_0, "RUNNING") == {ids[State.RUNNING], ids[State.CANCELING]}
    assert found(TES_1_0, "PREEMPTED") == set()
    assert found(TES_1_0, "CANCELING") == set()
    assert found(TES_1_0, "CANCELED") == {ids[State.CANCELED]}
    for state in PATHS:
        assert found(TES_1_1, state.value) == {ids[state]}


@pytest.mark.parametrize("page_size", [1, 2, 3, 5, 6, 7, 12, 13])
def test_state_filter_under_v1_pages_through_both_states_newest_first(
    api: Api, page_size: int
) -> None:
    # Interleaved in creation order, so that every page mixes the two stored states.
    for number in range(12):
        task_in(api, State.PREEMPTED if number % 3 else State.SYSTEM_ERROR, name=f"n{number}")
    task_in(api, State.COMPLETE)
    newest_first = [
        task_id for task_id, state in listed(api, TES_1_1) if state != State.COMPLETE.value
    ]
    pages: list[list[str]] = []
    token = ""
    while True:
        page = fetch(api, f"{TES_1_0}/tasks?state=SYSTEM_ERROR&page_size={page_size}{token}")
        pages.append([task["id"] for task in page["tasks"]])
        assert {task["state"] for task in page["tasks"]} == {"SYSTEM_ERROR"}
        if "next_page_token" not in page:
            break
        token = f"&page_token={page['next_page_token']}"
    assert [task_id for page_ids in pages for task_id in page_ids] == newest_first
    assert all(len(page_ids) == page_size for page_ids in pages[:-1])
    assert pages[-1], "no empty last page"


def test_state_filter_under_v1_combines_with_the_other_filters(api: Api) -> None:
    wanted = task_in(api, State.PREEMPTED, name="align-1")
    task_in(api, State.PREEMPTED, name="call-1")
    also = task_in(api, State.SYSTEM_ERROR, name="align-2")
    task_in(api, State.COMPLETE, name="align-3")
    assert listed(api, TES_1_0, "state=SYSTEM_ERROR&name_prefix=align&") == [
        (also, "SYSTEM_ERROR"),
        (wanted, "SYSTEM_ERROR"),
    ]
