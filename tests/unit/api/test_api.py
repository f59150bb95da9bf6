"""The TES HTTP API through the Flask test client: routes, views, errors, probes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from connexion import App

from tesk.config import CustomConfig, LimitsConfig, ServiceInfoConfig
from tesk.tes.models import ExecutorLog, TaskLog
from tesk.tes.progress import Progress
from tesk.tes.states import State
from tests.fakes.fake_backend import FakeBackend
from tests.unit.api.support import BASES, Api, SpecSchemas, attach, new_app, task_body

BASE = BASES[0]


@pytest.fixture(scope="module")
def app() -> App:
    return new_app()


@pytest.fixture
def api(app: App) -> Api:
    return attach(app)


@pytest.fixture(scope="module")
def schemas(app: App) -> SpecSchemas:
    return SpecSchemas.served_by(app.app.test_client())


def create(api: Api, body: dict[str, Any] | None = None, base: str = BASE) -> str:
    response = api.client.post(f"{base}/tasks", json=body or task_body())
    assert response.status_code == 200, response.get_json()
    assert set(response.get_json()) == {"id"}
    task_id: str = response.get_json()["id"]
    return task_id


def get(api: Api, task_id: str, view: str | None = None, base: str = BASE) -> dict[str, Any]:
    query = f"?view={view}" if view else ""
    response = api.client.get(f"{base}/tasks/{task_id}{query}")
    assert response.status_code == 200, response.get_json()
    document: dict[str, Any] = response.get_json()
    return document


def assert_problem(response: Any, status: int, *fragments: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["status"] == status
    assert body["title"]
    assert "\n" not in body["detail"]
    for fragment in fragments:
        assert fragment in body["detail"], body


# -- the served specification -------------------------------------------------------------------


@pytest.mark.parametrize("base", BASES)
def test_spec_is_served_offline_with_error_responses(api: Api, base: str) -> None:
    spec = api.client.get(f"{base}/openapi.json").get_json()
    text = json.dumps(spec)
    assert "raw.githubusercontent.com/ga4gh-discovery" not in text
    assert spec["info"]["version"] == "1.1.0"
    responses = spec["paths"]["/tasks"]["post"]["responses"]
    assert {"200", "400", "401", "403", "413", "500", "503"} <= set(map(str, responses))
    assert "404" in set(map(str, spec["paths"]["/tasks/{id}"]["get"]["responses"]))
    assert set(spec["components"]["schemas"]) >= {"Service", "ServiceType", "tesErrorResponse"}


def test_swagger_ui_is_served(api: Api) -> None:
    response = api.client.get(f"{BASE}/ui/")
    assert response.status_code == 200
    assert b"swagger-ui" in response.data


# -- service-info --------------------------------------------------------------------------------


@pytest.mark.parametrize("base", BASES)
def test_service_info(app: App, schemas: SpecSchemas, base: str) -> None:
    api = attach(app, backend=FakeBackend(["namespace", "queue"]))
    response = api.client.get(f"{base}/service-info")
    assert response.status_code == 200
    info = response.get_json()
    schemas.check("tesServiceInfo", info)
    assert info["type"] == {"group": "org.ga4gh", "artifact": "tes", "version": "1.1.0"}
    assert info["tesResources_backend_parameters"] == ["max_attempts", "namespace", "queue"]
    assert info["storage"] == ["file:///srv/data"]
    assert info["version"] == "9.9.9"
    assert info["createdAt"] == info["updatedAt"] == "2026-01-02T03:04:05.000000Z"
    assert info["organization"] == {
        "name": "TESK",
        "url": "https://github.com/elixir-cloud-aai/TESK",
    }


def test_service_info_from_config(app: App, schemas: SpecSchemas) -> None:
    custom = CustomConfig(
        service_info=ServiceInfoConfig(
            id="org.example.tes",
            name="Example TES",
            version="2.0",
            environment="test",
            contactUrl="mailto:ops@example.org",
            storage=["s3://bucket"],
        )
    )
    api = attach(app, custom=custom)
    info = api.client.get(f"{BASE}/service-info").get_json()
    schemas.check("tesServiceInfo", info)
    assert (info["id"], info["name"], info["version"]) == ("org.example.tes", "Example TES", "2.0")
    assert info["environment"] == "test"
    assert info["contactUrl"] == "mailto:ops@example.org"
    assert info["storage"] == ["s3://bucket"]


def test_legacy_service_info_for_old_clients(app: App) -> None:
    api = attach(app, storage=lambda: ["file:///data", "s3://"])
    response = api.client.get("/v1/tasks/service-info")
    assert response.status_code == 200
    assert response.get_json() == {
        "name": "TESK",
        "doc": CustomConfig().service_info.description,
        "storage": ["file:///data", "s3://"],
    }


# -- create and get ------------------------------------------------------------------------------


@pytest.mark.parametrize("base", BASES)
def test_create_stores_a_queued_task_and_submits_it(api: Api, base: str) -> None:
    task_id = create(api, task_body(tags={"project": "x"}), base)
    record = api.store.get(task_id)
    assert record is not None
    assert record.state is State.QUEUED
    assert (record.name, record.owner, record.tags) == ("hello", None, {"project": "x"})
    assert record.task.id == task_id
    assert [r.id for r in api.backend.submitted] == [task_id]
    assert get(api, task_id, base=base) == {"id": task_id, "state": "QUEUED"}


def test_full_view_is_what_the_client_sent_plus_what_tesk_filled_in(
    api: Api, schemas: SpecSchemas
) -> None:
    body = task_body(
        description="d",
        inputs=[
            {"url": "s3://bucket/in.txt", "path": "/data/in.txt"},
            {"path": "/data/inline.txt", "content": "hi", "url": "s3://ignored"},
        ],
        outputs=[{"url": "s3://bucket/out", "path": "/data/out*", "path_prefix": "/data/"}],
        resources={"cpu_cores": 2, "ram_gb": 1.5},
        volumes=["/scratch/a"],
        tags={"k": "v"},
    )
    task_id = create(api, body)
    full = get(api, task_id, "FULL")
    schemas.check("tesTask", full)
    creation_time = full.pop("creation_time")
    assert creation_time.endswith("Z")
    assert "T" in creation_time
    assert full == {**body, "id": task_id, "state": "QUEUED"}


def test_no_defaults_are_echoed(api: Api) -> None:
    task_id = create(api, {"executors": [{"image": "alpine", "command": ["true"]}]})
    full = get(api, task_id, "FULL")
    assert set(full) == {"id", "state", "executors", "creation_time"}
    assert full["executors"] == [{"image": "alpine", "command": ["true"]}]


@pytest.mark.parametrize("base", BASES)
def test_views(api: Api, schemas: SpecSchemas, base: str) -> None:
    body = task_body(inputs=[{"path": "/data/a.txt", "content": "secret"}])
    task_id = create(api, body, base)
    log = TaskLog(
        logs=[
            ExecutorLog(exit_code=0, stdout="out", stderr="err", start_time="2026-01-01T00:00:00Z")
        ],
        system_logs=["node a"],
        start_time="2026-01-01T00:00:00Z",
    )
    api.store.update(task_id, Progress(state=State.RUNNING, seq=1, log=log))

    minimal = get(api, task_id, base=base)
    assert minimal == {"id": task_id, "state": "RUNNING"}
    schemas.check("tesTask", minimal, minimal=True)
    assert get(api, task_id, "MINIMAL", base) == minimal

    basic = get(api, task_id, "BASIC", base)
    schemas.check("tesTask", basic)
    assert basic["inputs"] == [{"path": "/data/a.txt"}]
    assert basic["logs"] == [
        {
            "logs": [{"exit_code": 0, "start_time": "2026-01-01T00:00:00Z"}],
            "outputs": [],
            "start_time": "2026-01-01T00:00:00Z",
        }
    ]

    full = get(api, task_id, "FULL", base)
    schemas.check("tesTask", full)
    assert full["inputs"] == [{"path": "/data/a.txt", "content": "secret"}]
    assert full["logs"][0]["system_logs"] == ["node a"]
    assert full["logs"][0]["logs"][0]["stdout"] == "out"
    assert full["logs"][0]["logs"][0]["stderr"] == "err"


def test_executor_logs_only_for_executors_that_ran(api: Api) -> None:
    body = task_body(
        executors=[{"image": "a", "command": ["false"]}, {"image": "b", "command": ["x"]}]
    )
    task_id = create(api, body)
    log = TaskLog(logs=[ExecutorLog(exit_code=1)])
    api.store.update(task_id, Progress(state=State.EXECUTOR_ERROR, seq=1, log=log))
    full = get(api, task_id, "FULL")
    assert full["state"] == "EXECUTOR_ERROR"
    assert full["logs"][0]["logs"] == [{"exit_code": 1}]


def test_a_snakemake_task_is_accepted(api: Api) -> None:
    """The shape the Snakemake TES plugin sends: workdir /tmp, scripts as inline content."""
    body = {
        "name": "snakejob.all",
        "description": "",
        "inputs": [
            {"path": "/tmp/Snakefile", "content": "rule all: ..."},
            {"path": "/tmp/data/in.txt", "url": "file:///home/u/wf/data/in.txt"},
            {"path": "/tmp/run_snakemake.sh", "content": "#!/bin/sh"},
        ],
        "outputs": [{"path": "/tmp/out/result.txt", "url": "file:///home/u/wf/out/result.txt"}],
        "executors": [
            {
                "image": "snakemake/snakemake:v8",
                "command": ["/bin/bash", "/tmp/run_snakemake.sh"],
                "workdir": "/tmp",
            }
        ],
        "resources": {"cpu_cores": 1, "ram_gb": 1, "disk_gb": 1},
    }
    task_id = create(api, body)
    assert get(api, task_id, "FULL")["executors"][0]["workdir"] == "/tmp"


def test_get_unknown_task_is_404(api: Api) -> None:
    assert_problem(api.client.get(f"{BASE}/tasks/nope"), 404, "nope")


def test_authorization_header_is_ignored_when_auth_is_off(api: Api) -> None:
    headers = {"Authorization": "Basic Tm9uZTpOb25l"}  # None:None, as the Snakemake plugin sends
    response = api.client.post(f"{BASE}/tasks", json=task_body(), headers=headers)
    assert response.status_code == 200
    task_id = response.get_json()["id"]
    assert api.client.get(f"{BASE}/tasks/{task_id}", headers=headers).status_code == 200


# -- bad input -----------------------------------------------------------------------------------

EXECUTOR = {"image": "alpine", "command": ["true"]}

BAD_TASKS: list[tuple[str, Any, str]] = [
    ("not an object", [1, 2], "not of type 'object'"),
    ("no executors", {"name": "x"}, "executors"),
    ("empty executors", {"executors": []}, "executors"),
    ("no image", {"executors": [{"command": ["x"]}]}, "image"),
    ("empty image", {"executors": [{"image": " ", "command": ["x"]}]}, "executors[0].image"),
    ("no command", {"executors": [{"image": "a"}]}, "command"),
    ("empty command", {"executors": [{"image": "a", "command": []}]}, "executors[0].command"),
    (
        "command not strings",
        {"executors": [{"image": "a", "command": [1]}]},
        "not of type 'string'",
    ),
    ("name not a string", {"name": 5, "executors": [EXECUTOR]}, "name"),
    ("tags not strings", {"tags": {"a": 1}, "executors": [EXECUTOR]}, "tags"),
    (
        "cpu_cores not int",
        {"resources": {"cpu_cores": "two"}, "executors": [EXECUTOR]},
        "cpu_cores",
    ),
    ("read-only id", {"id": "mine", "executors": [EXECUTOR]}, "read-only"),
    ("read-only state", {"state": "COMPLETE", "executors": [EXECUTOR]}, "read-only"),
    (
        "relative input path",
        {"inputs": [{"url": "s3://b/k", "path": "data/in"}], "executors": [EXECUTOR]},
        "inputs[0].path",
    ),
    (
        "dot-dot output path",
        {"outputs": [{"url": "s3://b/k", "path": "/data/../etc/x"}], "executors": [EXECUTOR]},
        "outputs[0].path",
    ),
    ("root volume", {"volumes": ["/"], "executors": [EXECUTOR]}, "volumes[0]"),
    (
        "input directly under root",
        {"inputs": [{"url": "s3://b/k", "path": "/in.txt"}], "executors": [EXECUTOR]},
        "directly under '/'",
    ),
    (
        "relative workdir",
        {"executors": [{**EXECUTOR, "workdir": "work"}]},
        "executors[0].workdir",
    ),
    ("relative stdout", {"executors": [{**EXECUTOR, "stdout": "out.txt"}]}, "executors[0].stdout"),
    (
        "input without url or content",
        {"inputs": [{"path": "/data/in"}], "executors": [EXECUTOR]},
        "needs a 'url' or a 'content'",
    ),
    (
        "output without url",
        {"outputs": [{"path": "/data/out"}], "executors": [EXECUTOR]},
        "url",
    ),
    (
        "wildcard output without path_prefix",
        {"outputs": [{"url": "s3://b/", "path": "/data/*.txt"}], "executors": [EXECUTOR]},
        "outputs[0].path_prefix",
    ),
    (
        "wildcard output outside path_prefix",
        {
            "outputs": [{"url": "s3://b/", "path": "/data/*.txt", "path_prefix": "/other/"}],
            "executors": [EXECUTOR],
        },
        "does not start with",
    ),
    (
        "refused input url",
        {"inputs": [{"url": "bad://x", "path": "/data/in"}], "executors": [EXECUTOR]},
        "inputs[0].url: cannot reach bad://x",
    ),
    (
        "refused output url",
        {"outputs": [{"url": "bad://y", "path": "/data/out"}], "executors": [EXECUTOR]},
        "outputs[0].url: cannot reach bad://y",
    ),
    (
        "unknown file type",
        {
            "inputs": [{"url": "s3://b/k", "path": "/data/in", "type": "LINK"}],
            "executors": [EXECUTOR],
        },
        "LINK",
    ),
]


@pytest.mark.parametrize(("case", "body", "detail"), BAD_TASKS, ids=[c[0] for c in BAD_TASKS])
def test_bad_tasks_are_rejected_and_nothing_is_stored(
    api: Api, schemas: SpecSchemas, case: str, body: Any, detail: str
) -> None:
    response = api.client.post(f"{BASE}/tasks", json=body)
    assert_problem(response, 400, detail)
    schemas.check("tesErrorResponse", response.get_json())
    assert api.store.find(set(State)) == []
    assert api.backend.submitted == []


@pytest.mark.parametrize(
    ("data", "content_type", "status", "detail"),
    [
        ("{not json", "application/json", 400, "not valid JSON"),
        ("", "application/json", 400, ""),
        ("executors=x", "application/x-www-form-urlencoded", 415, "expected JSON"),
    ],
)
def test_malformed_bodies(api: Api, data: str, content_type: str, status: int, detail: str) -> None:
    response = api.client.post(f"{BASE}/tasks", data=data, content_type=content_type)
    assert_problem(response, status, detail)
    assert api.store.find(set(State)) == []


def test_oversized_body_is_413() -> None:
    small = new_app(CustomConfig(limits=LimitsConfig(max_body_bytes=4096)))
    api = attach(small)
    big = task_body(description="x" * 5000)
    assert_problem(api.client.post(f"{BASE}/tasks", json=big), 413, "4096 bytes")
    assert api.store.find(set(State)) == []
    assert api.client.post(f"{BASE}/tasks", json=task_body()).status_code == 200


@pytest.mark.parametrize(
    ("field", "item", "limit"),
    [
        ("executors", EXECUTOR, "max_executors"),
        ("inputs", {"content": "x", "path": "/data/x"}, "max_inputs"),
        ("outputs", {"url": "s3://b/x", "path": "/data/x"}, "max_outputs"),
    ],
)
def test_too_many_items_is_400(app: App, field: str, item: Any, limit: str) -> None:
    api = attach(app, custom=CustomConfig(limits=LimitsConfig(**{limit: 2})))
    body = task_body(**{field: [item] * 3})
    assert_problem(api.client.post(f"{BASE}/tasks", json=body), 400, f"at most 2 {field}")
    body = task_body(**{field: [item] * 2})
    assert api.client.post(f"{BASE}/tasks", json=body).status_code == 200


def test_too_many_tags_is_400(app: App) -> None:
    api = attach(app, custom=CustomConfig(limits=LimitsConfig(max_tags=1)))
    response = api.client.post(f"{BASE}/tasks", json=task_body(tags={"a": "1", "b": "2"}))
    assert_problem(response, 400, "at most 1 tags")


@pytest.mark.parametrize(
    ("url", "detail"),
    [
        ("/tasks?view=EVERYTHING", "EVERYTHING"),
        ("/tasks?state=DONE", "DONE"),
        ("/tasks?page_size=0", "page_size"),
        ("/tasks?page_size=2048", "page_size"),
        ("/tasks?page_size=many", "page_size"),
        ("/tasks?page_token=%21%21", "page_token"),
        ("/tasks?page_token=bm90LWEtY3Vyc29y", "page_token"),
        ("/tasks?tag_key=a&tag_value=1&tag_value=2", "tag_value"),
        ("/tasks?project=x", "project"),
        ("/tasks/abc?view=ALL", "ALL"),
        ("/tasks/abc?verbose=1", "verbose"),
    ],
)
def test_bad_query_parameters_are_400(api: Api, url: str, detail: str) -> None:
    assert_problem(api.client.get(f"{BASE}{url}"), 400, detail)


def test_unknown_route_and_method(api: Api) -> None:
    assert_problem(api.client.get(f"{BASE}/jobs"), 404)
    assert_problem(api.client.delete(f"{BASE}/tasks"), 405)


# -- listing -------------------------------------------------------------------------------------


def ids(response: Any) -> list[str]:
    return [task["id"] for task in response.get_json()["tasks"]]


def test_list_is_newest_first_and_minimal_by_default(api: Api, schemas: SpecSchemas) -> None:
    created = [create(api) for _ in range(3)]
    response = api.client.get(f"{BASE}/tasks")
    assert response.status_code == 200
    body = response.get_json()
    schemas.check("tesListTasksResponse", body, minimal=True)
    assert ids(response) == created[::-1]
    assert all(set(task) == {"id", "state"} for task in body["tasks"])
    assert "next_page_token" not in body
    assert api.store.queries[-1].with_documents is False
    assert api.store.queries[-1].page_size == 256


@pytest.mark.parametrize("view", ["BASIC", "FULL"])
def test_list_with_documents(api: Api, schemas: SpecSchemas, view: str) -> None:
    create(api, task_body(inputs=[{"path": "/data/a", "content": "c"}]))
    body = api.client.get(f"{BASE}/tasks?view={view}").get_json()
    schemas.check("tesListTasksResponse", body)
    assert api.store.queries[-1].with_documents is True
    assert ("content" in body["tasks"][0]["inputs"][0]) is (view == "FULL")


@pytest.mark.parametrize("base", BASES)
def test_paging_is_stable_while_tasks_are_created(api: Api, base: str) -> None:
    created = [create(api) for _ in range(5)]
    seen: list[str] = []
    token = None
    while True:
        url = f"{base}/tasks?page_size=2" + (f"&page_token={token}" if token else "")
        body = api.client.get(url).get_json()
        seen += [task["id"] for task in body["tasks"]]
        create(api)  # a newer task must not shift the pages
        token = body.get("next_page_token")
        if token is None:
            break
    assert seen == created[::-1]


def test_page_size_bounds(api: Api) -> None:
    for _ in range(3):
        create(api)
    assert len(ids(api.client.get(f"{BASE}/tasks?page_size=1"))) == 1
    assert len(ids(api.client.get(f"{BASE}/tasks?page_size=2047"))) == 3


def test_filters_by_name_prefix_and_state(api: Api) -> None:
    a = create(api, task_body(name="align-1"))
    b = create(api, task_body(name="align-2"))
    create(api, task_body(name="call-1"))
    api.store.update(b, Progress(state=State.RUNNING))
    assert ids(api.client.get(f"{BASE}/tasks?name_prefix=align")) == [b, a]
    assert ids(api.client.get(f"{BASE}/tasks?name_prefix=align&state=RUNNING")) == [b]
    assert ids(api.client.get(f"{BASE}/tasks?state=COMPLETE")) == []
    # The spec's default state (UNKNOWN) is a filter only when the client sends it.
    assert ids(api.client.get(f"{BASE}/tasks?state=UNKNOWN")) == []


# The table of the TES spec (ListTasks, tag_key).
TAG_TABLE = [
    ({"foo": "bar"}, {"foo": "bar"}, True),
    ({"foo": "bar"}, {"foo": "bat"}, False),
    ({"foo": ""}, {"foo": ""}, True),
    ({"foo": "bar", "baz": "bat"}, {"foo": "bar", "baz": "bat"}, True),
    ({"foo": "bar"}, {"foo": "bar", "baz": "bat"}, True),
    ({"foo": "bar", "baz": "bat"}, {"foo": "bar"}, False),
    ({"foo": ""}, {"foo": "bar"}, True),
    ({"foo": ""}, {}, False),
]


@pytest.mark.parametrize(("query", "tags", "match"), TAG_TABLE)
def test_tag_filter_follows_the_spec_table(
    api: Api, query: dict[str, str], tags: dict[str, str], match: bool
) -> None:
    task_id = create(api, task_body(tags=tags))
    params = "&".join(f"tag_key={k}&tag_value={v}" for k, v in query.items())
    assert ids(api.client.get(f"{BASE}/tasks?{params}")) == ([task_id] if match else [])


def test_tag_key_without_value_matches_any_value(api: Api) -> None:
    tagged = create(api, task_body(tags={"foo": "bar", "x": "1"}))
    create(api, task_body(tags={"x": "1"}))
    assert ids(api.client.get(f"{BASE}/tasks?tag_key=foo")) == [tagged]
    assert ids(api.client.get(f"{BASE}/tasks?tag_key=x&tag_key=foo&tag_value=1")) == [tagged]


# -- cancel --------------------------------------------------------------------------------------


@pytest.mark.parametrize("base", BASES)
def test_cancel_an_active_task(api: Api, schemas: SpecSchemas, base: str) -> None:
    task_id = create(api, base=base)
    api.store.update(task_id, Progress(state=State.RUNNING))
    response = api.client.post(f"{base}/tasks/{task_id}:cancel")
    assert response.status_code == 200
    assert response.get_json() == {}
    schemas.check("tesCancelTaskResponse", response.get_json())
    # Read under the TES 1.1 path: /v1 shows TES 1.0 clients a cancelling task as RUNNING.
    assert get(api, task_id)["state"] == "CANCELING"
    assert api.backend.cancelled == [(task_id, State.RUNNING)]
    # Again: nothing changes, nothing is torn down twice.
    assert api.client.post(f"{base}/tasks/{task_id}:cancel").status_code == 200
    assert api.backend.cancelled == [(task_id, State.RUNNING)]


@pytest.mark.parametrize("state", [State.COMPLETE, State.EXECUTOR_ERROR, State.CANCELED])
def test_cancel_a_finished_task_changes_nothing(api: Api, state: State) -> None:
    task_id = create(api)
    if state is State.CANCELED:
        api.store.update(task_id, Progress(state=State.CANCELING))
    api.store.update(task_id, Progress(state=state))
    response = api.client.post(f"{BASE}/tasks/{task_id}:cancel")
    assert response.status_code == 200
    assert response.get_json() == {}
    assert get(api, task_id)["state"] == state.value
    assert api.backend.cancelled == []


def test_cancel_unknown_task_is_404(api: Api) -> None:
    assert_problem(api.client.post(f"{BASE}/tasks/nope:cancel"), 404, "nope")


def test_cancel_the_backend_cannot_finish_yet_is_logged(app: App) -> None:
    api = attach(app, backend=FakeBackend(fail_cancel="cluster unreachable"))
    task_id = create(api)
    assert api.client.post(f"{BASE}/tasks/{task_id}:cancel").status_code == 200
    full = get(api, task_id, "FULL")
    assert full["state"] == "CANCELING"
    assert any("cluster unreachable" in line for line in full["logs"][0]["system_logs"])


# -- backend_parameters --------------------------------------------------------------------------


def test_unsupported_backend_parameters_are_dropped_with_a_warning(app: App) -> None:
    api = attach(app, backend=FakeBackend(["namespace"]))
    body = task_body(resources={"backend_parameters": {"NameSpace": "lab", "VmSize": "big"}})
    task_id = create(api, body)
    full = get(api, task_id, "FULL")
    assert full["resources"] == {"backend_parameters": {"namespace": "lab"}}
    assert full["logs"][0]["system_logs"] == [
        "backend_parameters: ignored unsupported key 'VmSize' (supported: max_attempts, namespace)"
    ]
    assert "system_logs" not in get(api, task_id, "BASIC")["logs"][0]
    assert api.backend.submitted[0].task.resources is not None
    assert api.backend.submitted[0].task.resources.backend_parameters == {"namespace": "lab"}


def test_all_backend_parameters_unsupported(app: App) -> None:
    api = attach(app, backend=FakeBackend([]))
    task_id = create(api, task_body(resources={"backend_parameters": {"a": "1"}, "cpu_cores": 1}))
    assert get(api, task_id, "FULL")["resources"] == {"cpu_cores": 1}


def test_strict_backend_parameters_refuse_unsupported_keys(app: App) -> None:
    api = attach(app, backend=FakeBackend(["namespace"]))
    body = task_body(
        resources={"backend_parameters": {"VmSize": "big"}, "backend_parameters_strict": True}
    )
    assert_problem(api.client.post(f"{BASE}/tasks", json=body), 400, "VmSize")
    assert api.store.find(set(State)) == []
    body["resources"]["backend_parameters"] = {"NAMESPACE": "lab"}
    task_id = create(api, body)
    assert get(api, task_id, "FULL")["resources"]["backend_parameters"] == {"namespace": "lab"}


def test_backend_checks_the_values(app: App) -> None:
    def check(parameters: Any) -> None:
        if parameters.get("namespace") == "kube-system":
            raise ValueError("namespace 'kube-system' is not allowed")

    api = attach(app, backend=FakeBackend(["namespace"], check=check))
    body = task_body(resources={"backend_parameters": {"namespace": "kube-system"}})
    assert_problem(api.client.post(f"{BASE}/tasks", json=body), 400, "kube-system")
    assert api.store.find(set(State)) == []


# -- failures of the backend and the store -------------------------------------------------------


def test_a_task_the_backend_refuses_ends_as_system_error(app: App) -> None:
    api = attach(app, backend=FakeBackend(fail_submit="no capacity"))
    task_id = create(api)
    full = get(api, task_id, "FULL")
    assert full["state"] == "SYSTEM_ERROR"
    assert any("no capacity" in line for line in full["logs"][0]["system_logs"])


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/tasks"),
        ("get", "/tasks"),
        ("get", "/tasks/abc"),
        ("post", "/tasks/abc:cancel"),
    ],
)
def test_store_unavailable_is_503(api: Api, schemas: SpecSchemas, method: str, path: str) -> None:
    api.store.down = True
    response = getattr(api.client, method)(f"{BASE}{path}", json=task_body())
    assert_problem(response, 503, "task store is unavailable", "connection refused")
    schemas.check("tesErrorResponse", response.get_json())


def test_probes(api: Api) -> None:
    assert api.client.get("/healthz").status_code == 200
    assert api.client.get("/readyz").status_code == 200
    api.store.down = True
    assert api.client.get("/healthz").status_code == 200
    response = api.client.get("/readyz")
    assert response.status_code == 503
    assert "connection refused" in response.get_json()["detail"]


def test_unexpected_errors_are_500_json(app: App) -> None:
    class Broken(FakeBackend):
        def supported_backend_parameters(self) -> list[str]:
            raise RuntimeError("bug")

    api = attach(app, backend=Broken())
    response = api.client.get(f"{BASE}/service-info")
    assert_problem(response, 500, "unexpected error")
    assert "bug" not in response.get_data(as_text=True)
