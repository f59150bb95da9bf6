"""The `tesk` client commands against the TES API on 127.0.0.1 (werkzeug in a thread, with the
in-memory store and a backend that plays the engine's part), through click's CliRunner."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from connexion import App

from tesk.auth.users import User, hash_password, write_users
from tesk.cli import main
from tesk.config import AuthConfig, CustomConfig
from tesk.store.base import TaskRecord
from tesk.tes.states import State
from tests.fakes.fake_backend import FakeBackend
from tests.unit.api.support import attach, new_app
from tests.unit.client.support import (
    Canned,
    LiveApi,
    RecordingServer,
    closed_port_url,
    live_api,
    serving,
)

TASK = {"name": "hello", "executors": [{"image": "alpine", "command": ["echo", "hello"]}]}

# What the playing backend makes of a task, by name: its final state and executor exit codes.
OUTCOMES: dict[str, tuple[State, tuple[int, ...]]] = {
    "ok": (State.COMPLETE, (0,)),
    "fails": (State.EXECUTOR_ERROR, (3,)),
    "breaks": (State.SYSTEM_ERROR, ()),
}


class PlayingBackend(FakeBackend):
    """Moves submitted tasks named in OUTCOMES through RUNNING to their outcome, in a thread."""

    live: LiveApi | None = None

    def submit(self, record: TaskRecord) -> None:
        super().submit(record)
        if record.name in OUTCOMES:
            threading.Thread(target=self._play, args=(record.id, record.name), daemon=True).start()

    def _play(self, task_id: str, name: str) -> None:
        assert self.live is not None
        state, codes = OUTCOMES[name]
        time.sleep(0.05)
        self.live.set_state(task_id, State.RUNNING)
        time.sleep(0.05)
        self.live.set_state(task_id, state, exit_codes=codes, system_logs=(f"{name}!",))


@pytest.fixture(scope="module")
def app() -> App:
    return new_app()


@pytest.fixture
def live(app: App) -> Iterator[LiveApi]:
    backend = PlayingBackend()
    with live_api(app, backend) as served:
        backend.live = served
        yield served


def tesk(live_or_url: LiveApi | str, *args: str, input: str | None = None, **env: str) -> Result:
    url = live_or_url if isinstance(live_or_url, str) else live_or_url.url
    environment = {"TESK_URL": url, "TESK_TOKEN": "", "TESK_USER": "", "TESK_PASSWORD": ""}
    environment.update(env)
    return CliRunner().invoke(main, list(args), input=input, env=environment)


def created(result: Result) -> str:
    assert result.exit_code == 0, result.output
    task_id = result.stdout.strip()
    assert result.stdout == task_id + "\n"
    uuid.UUID(task_id)
    return task_id


def assert_fails(result: Result, code: int, *fragments: str) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), result.exception
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


# -- submit and run -------------------------------------------------------------------------------


def test_submit_a_json_file_prints_the_id_alone(live: LiveApi, tmp_path: Path) -> None:
    path = tmp_path / "task.json"
    path.write_text(json.dumps(TASK))
    task_id = created(tesk(live, "submit", str(path)))
    assert live.store.get(task_id).task.name == "hello"


def test_submit_yaml_from_standard_input(live: LiveApi) -> None:
    text = "name: from-stdin\nexecutors:\n  - image: alpine\n    command: [date]\n"
    task_id = created(tesk(live, "submit", "-", input=text))
    assert live.store.get(task_id).task.executors[0].command == ["date"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"name": ', "task.json: not valid JSON"),
        ("[]", "task.json: a task is a JSON/YAML object (mapping), not list"),
        ("", "task.json: empty"),
    ],
)
def test_submit_refuses_unreadable_files(
    live: LiveApi, tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "task.json"
    path.write_text(content)
    assert_fails(tesk(live, "submit", str(path)), 2, message)
    assert live.api.backend.submitted == []


def test_submit_of_a_missing_file_is_a_usage_error(live: LiveApi, tmp_path: Path) -> None:
    assert_fails(tesk(live, "submit", str(tmp_path / "nope.json")), 2, "No such file")


def test_a_task_the_server_refuses_gives_its_reason_on_one_line(
    live: LiveApi, tmp_path: Path
) -> None:
    path = tmp_path / "task.yaml"
    path.write_text("executors: [{image: alpine, command: [ls], workdir: relative}]\n")
    result = tesk(live, "submit", str(path))
    assert_fails(result, 1, "Error: 400 Bad Request: executors[0].workdir")
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1


def test_run_builds_and_submits_a_one_executor_task(live: LiveApi, tmp_path: Path) -> None:
    local = tmp_path / "in.txt"
    local.write_text("hello\n")
    result = tesk(
        live,
        "run",
        "--name", "r1",
        "-i", f"/data/in.txt=@{local}",
        "--input", "/data/ref=https://example.org/ref.fa",
        "-o", "/data/out/*.txt=s3://bucket/out/",
        "--cpu", "2", "--ram", "0.5", "--disk", "3",
        "--tag", "project=p", "-e", "GREETING=hi",
        "--workdir", "/data",
        "alpine", "--", "sh", "-c", "cat in.txt > out/a.txt",
    )  # fmt: skip
    task = live.store.get(created(result)).task
    assert task.dump() == {
        "id": task.id,
        "creation_time": task.creation_time,
        "name": "r1",
        "executors": [
            {
                "image": "alpine",
                "command": ["sh", "-c", "cat in.txt > out/a.txt"],
                "workdir": "/data",
                "env": {"GREETING": "hi"},
            }
        ],
        "inputs": [
            {"path": "/data/in.txt", "content": "hello\n"},
            {"path": "/data/ref", "url": "https://example.org/ref.fa"},
        ],
        "outputs": [
            {"path": "/data/out/*.txt", "url": "s3://bucket/out/", "path_prefix": "/data/out/"}
        ],
        "resources": {"cpu_cores": 2, "ram_gb": 0.5, "disk_gb": 3.0},
        "tags": {"project": "p"},
    }


def test_run_without_the_separator_keeps_the_command_options(live: LiveApi) -> None:
    task_id = created(tesk(live, "run", "alpine", "ls", "-la", "--color"))
    assert live.store.get(task_id).task.executors[0].command == ["ls", "-la", "--color"]


@pytest.mark.parametrize(
    ("name", "code"), [("ok", 0), ("fails", 3), ("breaks", 4)], ids=["ok", "fails", "breaks"]
)
def test_run_wait_prints_the_id_and_mirrors_the_outcome(
    live: LiveApi, name: str, code: int
) -> None:
    result = tesk(live, "run", "--wait", "--interval", "0.1", "--name", name, "alpine", "true")
    assert result.exit_code == code, result.output
    task_id = result.stdout.strip()
    assert result.stdout == task_id + "\n"
    final, _ = OUTCOMES[name]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"{task_id} {final.value}")


@pytest.mark.parametrize(
    "args",
    [
        ["run", "alpine"],
        ["run", "alpine", "--"],
        ["run", "--cpu", "0", "alpine", "true"],
        ["run", "--ram", "-1", "alpine", "true"],
        ["run", "--input", "relative=s3://b/k", "alpine", "true"],
        ["run", "--output", "/data/x", "alpine", "true"],
        ["run", "--tag", "=v", "alpine", "true"],
        ["list", "--page-size", "0"],
        ["list", "--state", "DONE"],
        ["list", "--view", "ALL"],
        ["list", "--tag", "=x"],
        ["wait"],
        ["wait", "--timeout", "0", "x"],
        ["cancel"],
        ["get"],
        ["list", "--url", "ftp://127.0.0.1/"],
        ["list", "--token", "t", "--user", "u", "--password", "p"],
        ["list", "--password", "p"],
    ],
)
def test_bad_arguments_are_usage_errors(live: LiveApi, args: list[str]) -> None:
    result = tesk(live, *args)
    assert_fails(result, 2, "Usage: ")
    assert live.api.backend.submitted == []


# -- list, get, cancel, wait, service-info ---------------------------------------------------------


def test_list_prints_lines_and_follows_pages(live: LiveApi) -> None:
    ids = [created(tesk(live, "run", "--name", f"job-{i}", "alpine", "true")) for i in range(3)]
    other = created(tesk(live, "run", "--name", "other", "--tag", "k=v", "alpine", "true"))

    result = tesk(live, "list")
    assert result.exit_code == 0, result.output
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert [row[:3] for row in rows] == [[other, "QUEUED", "other"]] + [
        [task_id, "QUEUED", f"job-{i}"] for i, task_id in reversed(list(enumerate(ids)))
    ]
    assert all(row[3].endswith("Z") for row in rows)

    first_page = tesk(live, "list", "--page-size", "2")
    assert len(first_page.stdout.splitlines()) == 2
    assert "more tasks: --page-token " in first_page.stderr

    every = tesk(live, "list", "--page-size", "1", "--all", "--name-prefix", "job-")
    assert [line.split("\t")[0] for line in every.stdout.splitlines()] == ids[::-1]
    assert every.stderr == ""

    tagged = tesk(live, "list", "--tag", "k=v", "--tag", "k")
    assert [line.split("\t")[0] for line in tagged.stdout.splitlines()] == [other]

    live.set_state(ids[1], State.COMPLETE)
    complete = tesk(live, "list", "--state", "complete", "--json", "--view", "MINIMAL")
    assert json.loads(complete.stdout) == {"tasks": [{"id": ids[1], "state": "COMPLETE"}]}

    everything = json.loads(tesk(live, "list", "--all", "--json", "--page-size", "2").stdout)
    assert len(everything["tasks"]) == 4
    assert "next_page_token" not in everything


def test_get_prints_the_task_as_json(live: LiveApi) -> None:
    task_id = created(tesk(live, "run", "--name", "g", "alpine", "true"))
    live.set_state(task_id, State.COMPLETE, exit_codes=(0,))
    full = json.loads(tesk(live, "get", task_id).stdout)
    assert full["logs"][0]["logs"][0]["stdout"] == ""
    minimal = json.loads(tesk(live, "get", "--view", "minimal", task_id).stdout)
    assert minimal == {"id": task_id, "state": "COMPLETE"}
    assert_fails(tesk(live, "get", "nope"), 1, "Error: 404 Not Found: task 'nope' not found")


def test_cancel_goes_on_after_a_failure(live: LiveApi) -> None:
    first = created(tesk(live, "run", "alpine", "sleep", "60"))
    second = created(tesk(live, "run", "alpine", "sleep", "60"))
    result = tesk(live, "cancel", first, "nope", second)
    assert_fails(result, 1, "Error: cancel nope: 404 Not Found")
    assert result.stdout.splitlines() == [first, second]
    assert [c[0] for c in live.api.backend.cancelled] == [first, second]


@pytest.mark.parametrize(
    ("states", "code"),
    [
        ((State.COMPLETE,), 0),
        ((State.RUNNING, State.COMPLETE), 0),
        ((State.EXECUTOR_ERROR,), 3),
        ((State.SYSTEM_ERROR,), 4),
        ((State.CANCELING, State.CANCELED), 5),
        ((State.PREEMPTED,), 6),
    ],
    ids=lambda value: str(value),
)
def test_wait_exit_codes_mirror_the_final_state(
    live: LiveApi, states: tuple[State, ...], code: int
) -> None:
    task_id = created(tesk(live, "run", "alpine", "true"))
    for state in states:
        live.set_state(task_id, state)
    result = tesk(live, "wait", task_id)
    assert result.exit_code == code, result.output
    assert result.stdout.splitlines()[-1].startswith(f"{task_id} {states[-1].value}")


def test_wait_for_several_tasks_and_a_timeout(live: LiveApi) -> None:
    done = created(tesk(live, "run", "alpine", "true"))
    stuck = created(tesk(live, "run", "alpine", "true"))
    live.set_state(done, State.COMPLETE)
    result = tesk(live, "wait", "--interval", "0.1", "--timeout", "0.3", done, stuck)
    assert result.exit_code == 7, result.output
    assert f"{done} COMPLETE" in result.stdout
    assert result.stdout.splitlines()[-1] == f"{stuck} QUEUED: timed out"
    assert tesk(live, "wait", done, "nope").exit_code == 1


def test_service_info(live: LiveApi) -> None:
    result = tesk(live, "service-info")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["type"]["artifact"] == "tes"


@pytest.mark.parametrize("suffix", ["/", "/ga4gh/tes/v1", "/v1/"])
def test_url_flag_wins_over_the_environment(live: LiveApi, suffix: str) -> None:
    result = tesk(closed_port_url(), "service-info", "--url", live.url + suffix)
    assert result.exit_code == 0, result.output


def test_an_unreachable_server_is_one_line_and_exit_1() -> None:
    url = closed_port_url()
    result = tesk(url, "list")
    assert_fails(result, 1, f"Error: cannot reach {url}/ga4gh/tes/v1: ")
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["--token", "abc"], {}, "Bearer abc"),
        ([], {"TESK_TOKEN": "from-env"}, "Bearer from-env"),
        (["--user", "u", "--password", "p"], {}, "Basic " + base64.b64encode(b"u:p").decode()),
        (
            [],
            {"TESK_USER": "v", "TESK_PASSWORD": "q"},
            "Basic " + base64.b64encode(b"v:q").decode(),
        ),
        ([], {}, None),
    ],
)
def test_credentials_from_flags_and_environment(
    args: list[str], env: dict[str, str], expected: str | None
) -> None:
    server = RecordingServer()
    with serving(server) as url:
        result = tesk(url, "service-info", *args, **env)
    assert result.exit_code == 0, result.output
    assert [r["authorization"] for r in server.requests] == [expected]


def test_help_lists_the_client_commands() -> None:
    result = CliRunner().invoke(main, ["--help"])
    commands = ("submit", "run", "list", "get", "cancel", "wait", "events", "service-info", "serve")
    for command in commands:
        assert f"  {command} " in result.stdout


def test_an_answer_of_the_wrong_shape_is_one_line_too() -> None:
    server = RecordingServer([Canned(200, json.dumps({"tasks": "not a list"}))])
    with serving(server) as url:
        result = tesk(url, "list")
        debug = tesk(url, "list", TESK_DEBUG="1")
    assert_fails(result, 1, "Error: internal error: AttributeError: ")
    assert "set TESK_DEBUG=1 to see where" in result.stderr
    assert isinstance(debug.exception, AttributeError)


def test_credentials_against_a_server_that_checks_them(tmp_path: Path) -> None:
    users = tmp_path / "users"
    write_users(users, [User("alice", hash_password("s3cret pw"), ())])
    custom = CustomConfig(auth=AuthConfig(mode="basic", users_file=users))
    with live_api(new_app(custom)) as served:
        refused = tesk(served, "list")
        wrong = tesk(served, "list", "--user", "alice", "--password", "nope")
        created = tesk(
            served, "run", "alpine", "true", TESK_USER="alice", TESK_PASSWORD="s3cret pw"
        )
        listed = tesk(served, "list", "--user", "alice", "--password", "s3cret pw")
    assert_fails(refused, 1, "Error: 401 Unauthorized")
    assert_fails(wrong, 1, "Error: 401 Unauthorized")
    assert "s3cret" not in refused.stderr + wrong.stderr
    task_id = created.stdout.strip()
    assert created.exit_code == 0, created.output
    assert listed.stdout.split("\t")[0] == task_id


# -- events, and wait on them ---------------------------------------------------------------------


class Paths:
    """WSGI middleware recording each request's method and path; `events=False` answers the
    event streams as a TES server without them does (404), `events="html"` with a web page."""

    def __init__(self, app: Any, events: bool | str = True) -> None:
        self.app = app
        self.events = events
        self.seen: list[str] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ["PATH_INFO"]
        self.seen.append(f"{environ['REQUEST_METHOD']} {path}")
        if path.endswith("/events") and self.events is not True:
            if self.events == "html":
                start_response("200 OK", [("Content-Type", "text/html")])
                return [b"<html>sign in first</html>"]
            start_response("404 NOT FOUND", [("Content-Type", "application/json")])
            return [b'{"title": "Not Found", "status": 404}']
        return self.app(environ, start_response)

    def count(self, entry: str) -> int:
        return self.seen.count(entry)


@contextmanager
def recorded(app: App, events: bool | str = True) -> Iterator[tuple[LiveApi, Paths]]:
    backend = PlayingBackend()
    api = attach(app, backend=backend)
    paths = Paths(app.app, events)
    with serving(paths) as url:
        served = LiveApi(api, url)
        backend.live = served
        yield served, paths


def test_wait_follows_the_event_stream_when_the_server_offers_it(app: App) -> None:
    with recorded(app) as (served, paths):
        task_id = created(tesk(served, "run", "--name", "fails", "alpine", "true"))
        # A poll every minute: the outcome can only come this soon from the stream.
        result = tesk(served, "wait", "--interval", "60", task_id)
    assert result.exit_code == 3, result.output
    last = result.stdout.splitlines()[-1]
    assert last == f"{task_id} EXECUTOR_ERROR (executors done: 1/1): fails!"
    assert paths.count(f"GET /ga4gh/tes/v1/tasks/{task_id}/events") == 1
    # One look at the task before following it, one for the reason it failed.
    assert paths.count(f"GET /ga4gh/tes/v1/tasks/{task_id}") == 2


@pytest.mark.parametrize("events", [False, "html"], ids=["404", "not-an-event-stream"])
def test_wait_polls_a_server_without_events(app: App, events: bool | str) -> None:
    with recorded(app, events) as (served, paths):
        task_id = created(tesk(served, "run", "--name", "ok", "alpine", "true"))
        result = tesk(served, "wait", "--interval", "0.1", task_id)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1].startswith(f"{task_id} COMPLETE")
    assert paths.count(f"GET /ga4gh/tes/v1/tasks/{task_id}/events") == 1
    assert paths.count(f"GET /ga4gh/tes/v1/tasks/{task_id}") >= 2


def test_events_prints_a_task_s_events_and_ends_with_its_final_state(app: App) -> None:
    with recorded(app) as (served, _):
        task_id = created(tesk(served, "run", "--name", "ok", "alpine", "true"))
        result = tesk(served, "events", "--ids", task_id)
        resumed = tesk(served, "events", "--after", result.stdout.split("\t")[0], task_id)
    assert result.exit_code == 0, result.output
    lines = [line.split("\t") for line in result.stdout.splitlines()]
    assert [line[3] for line in lines] == [
        "QUEUED",
        "RUNNING",
        "executor 0 started",
        "executor 0 ended (exit code 0)",
        "COMPLETE",
    ]
    assert {line[2] for line in lines} == {task_id}
    assert all(line[1].endswith("Z") for line in lines)
    assert [int(line[0]) for line in lines] == sorted(int(line[0]) for line in lines)
    assert resumed.exit_code == 0, resumed.output
    assert resumed.stdout.splitlines() == ["\t".join(line[1:]) for line in lines[1:]]


def test_events_of_a_server_without_them_is_a_one_line_error(app: App) -> None:
    with recorded(app, events=False) as (served, _):
        task_id = created(tesk(served, "run", "alpine", "true"))
        result = tesk(served, "events", task_id)
        everything = tesk(served, "events")
    assert_fails(result, 1, "the server offers no task events")
    assert_fails(everything, 1, "the server offers no task events")


def test_events_refuses_filters_with_a_task_id(live: LiveApi) -> None:
    assert_fails(tesk(live, "events", "--state", "RUNNING", "x"), 2, "Usage: ")
