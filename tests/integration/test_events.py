"""Task events (Server-Sent Events) through a real `tesk serve` with two API workers."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tesk.auth.users import User, hash_password, write_users
from tests.integration.live_server import TESK, LiveServer, live_server

Auth = tuple[str, str] | None
ALICE = ("alice", "alice-pw")
BOB = ("bob", "bob-pw")
ROOT = ("root", "root-pw")
FOLLOW_TIMEOUT_S = 90.0


@dataclass
class Event:
    id: int | None
    name: str
    data: dict[str, Any]

    @property
    def what(self) -> tuple[str, ...]:
        """(state) or (executor index, phase) as a short tuple to compare."""
        if self.name == "executor":
            return ("executor", str(self.data["executor"]), self.data["phase"])
        return ("state", self.data["state"])


def read_events(response: requests.Response, stop: Any = None) -> Iterator[Event]:
    """Parse a text/event-stream (written here, independent of TESK's own client)."""
    fields: dict[str, str] = {}
    for raw in response.iter_lines(decode_unicode=True):
        line = raw if isinstance(raw, str) else raw.decode()
        if line == "":
            if "data" in fields:
                event_id = int(fields["id"]) if "id" in fields else None
                yield Event(event_id, fields.get("event", "message"), json.loads(fields["data"]))
            fields = {}
            continue
        if line.startswith(":"):
            continue
        key, _, value = line.partition(":")
        fields[key] = value[1:] if value.startswith(" ") else value


def stream(
    server: LiveServer, path: str, auth: Auth = None, headers: dict[str, str] | None = None
) -> requests.Response:
    return requests.get(
        f"{server.api}{path}", auth=auth, headers=headers, stream=True, timeout=FOLLOW_TIMEOUT_S
    )


def create(server: LiveServer, task: dict[str, Any], auth: Auth = None) -> str:
    response = requests.post(f"{server.api}/tasks", json=task, auth=auth, timeout=30)
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def shell(script: str, name: str = "events", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "executors": [{"image": "busybox", "command": ["sh", "-c", script]}],
        **extra,
    }


def follow_task(server: LiveServer, task_id: str, auth: Auth = None, **kwargs: Any) -> list[Event]:
    """Every event of the task's stream, which the server ends after the final state."""
    with stream(server, f"/tasks/{task_id}/events", auth, **kwargs) as response:
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith("text/event-stream")
        assert response.headers["Cache-Control"] == "no-cache"
        assert response.headers["X-Accel-Buffering"] == "no"
        return list(read_events(response))


def take(response: requests.Response, count: int) -> list[Event]:
    found: list[Event] = []
    for event in read_events(response):
        found.append(event)
        if len(found) == count:
            break
    return found


def take_until_final(response: requests.Response, *task_ids: str) -> list[Event]:
    """Events until each of `task_ids` reached a final state (fast tasks may skip a state)."""
    finals = {"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED", "PREEMPTED"}
    waiting = set(task_ids)
    found: list[Event] = []
    for event in read_events(response):
        found.append(event)
        if event.name == "state" and event.data["state"] in finals:
            waiting.discard(event.data["task_id"])
            if not waiting:
                break
    return found


@pytest.fixture(scope="module")
def users_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tesk-users") / "users"
    write_users(
        path,
        [
            User("alice", hash_password("alice-pw")),
            User("bob", hash_password("bob-pw")),
            User("root", hash_password("root-pw"), frozenset({"admins"})),
        ],
    )
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, users_file: Path) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("tesk-events")
    overlay = root / "events.yaml"
    overlay.write_text(
        "custom:\n"
        "  auth:\n    mode: basic\n"
        f"    users_file: {users_file}\n    admin_group: admins\n"
        "  streams:\n    poll_interval_s: 0.2\n    keepalive_s: 1\n"
    )
    with live_server(root, "--config", str(overlay), "--workers", "2") as running:
        yield running


def test_a_task_s_events_arrive_in_order_and_the_stream_ends(server: LiveServer) -> None:
    task_id = create(server, shell("sleep 1; echo done"), ALICE)

    events = follow_task(server, task_id, ALICE)

    assert [e.what for e in events] == [
        ("state", "QUEUED"),
        ("state", "INITIALIZING"),
        ("state", "RUNNING"),
        ("executor", "0", "started"),
        ("executor", "0", "ended"),
        ("state", "COMPLETE"),
    ]
    ids = [e.id for e in events]
    assert all(isinstance(i, int) for i in ids)
    assert ids == sorted(ids)
    assert all(e.data["task_id"] == task_id and e.data["id"] == e.id for e in events)
    assert events[4].data["exit_code"] == 0
    assert all(e.data["time"].endswith("Z") for e in events)


def test_an_executors_start_arrives_while_it_runs(server: LiveServer) -> None:
    task_id = create(server, shell("sleep 3; echo done"), ALICE)
    seen: list[str] = []
    with stream(server, f"/tasks/{task_id}/events", ALICE) as response:
        for event in read_events(response):
            if event.what == ("executor", "0", "started"):
                task = requests.get(
                    f"{server.api}/tasks/{task_id}", params={"view": "FULL"}, auth=ALICE, timeout=30
                ).json()
                log = task["logs"][0]
                seen.append(f"started; task {task['state']}, {len(log.get('logs') or [])} logs")
                seen.append(f"running executor {log['metadata'].get('running_executor')}")
            if event.what == ("executor", "0", "ended"):
                seen.append("ended")
    # The executor was still running when its start arrived: no ExecutorLog yet, named running.
    assert seen == ["started; task RUNNING, 0 logs", "running executor 0", "ended"]
    done = requests.get(
        f"{server.api}/tasks/{task_id}", params={"view": "FULL"}, auth=ALICE, timeout=30
    ).json()
    assert done["state"] == "COMPLETE"
    assert "running_executor" not in done["logs"][0]["metadata"]


def test_a_late_subscriber_gets_the_whole_history(server: LiveServer) -> None:
    task_id = create(server, shell("exit 3"), ALICE)
    first = follow_task(server, task_id, ALICE)

    again = follow_task(server, task_id, ALICE)

    assert [e.what for e in first][-1] == ("state", "EXECUTOR_ERROR")
    assert [(e.id, e.what) for e in again] == [(e.id, e.what) for e in first]
    assert first[-2].data["exit_code"] == 3


def test_last_event_id_resumes_after_that_event(server: LiveServer) -> None:
    task_id = create(server, shell("true"), ALICE)
    every = follow_task(server, task_id, ALICE)
    middle = every[2]
    assert middle.id is not None

    by_header = follow_task(server, task_id, ALICE, headers={"Last-Event-ID": str(middle.id)})
    with stream(server, f"/tasks/{task_id}/events?last_event_id={middle.id}", ALICE) as response:
        by_query = list(read_events(response))

    assert [e.id for e in by_header] == [e.id for e in every[3:]]
    assert [e.id for e in by_query] == [e.id for e in every[3:]]
    # After the final event nothing is left: 204 stops an EventSource from reconnecting.
    done = requests.get(
        f"{server.api}/tasks/{task_id}/events",
        auth=ALICE,
        headers={"Last-Event-ID": str(every[-1].id)},
        timeout=10,
    )
    assert done.status_code == 204


def test_resuming_a_running_task_gets_exactly_the_events_after_the_id(server: LiveServer) -> None:
    task_id = create(server, shell("sleep 2"), ALICE)
    with stream(server, f"/tasks/{task_id}/events", ALICE) as response:
        first = take(response, 1)
    assert first[0].what == ("state", "QUEUED")

    rest = follow_task(server, task_id, ALICE, headers={"Last-Event-ID": str(first[0].id)})
    every = follow_task(server, task_id, ALICE)

    assert [e.id for e in rest] == [e.id for e in every[1:]]
    assert rest[-1].what == ("state", "COMPLETE")


def test_the_events_of_an_unknown_or_invisible_task_are_404(server: LiveServer) -> None:
    alices = create(server, shell("true"), ALICE)

    unknown = requests.get(f"{server.api}/tasks/no-such-task/events", auth=ALICE, timeout=10)
    invisible = requests.get(f"{server.api}/tasks/{alices}/events", auth=BOB, timeout=10)
    anonymous = requests.get(f"{server.api}/tasks/{alices}/events", timeout=10)
    bad_id = requests.get(
        f"{server.api}/tasks/{alices}/events", auth=ALICE, headers={"Last-Event-ID": "x"}
    )

    assert (unknown.status_code, invisible.status_code) == (404, 404)
    assert anonymous.status_code == 401
    assert bad_id.status_code == 400
    assert "Last-Event-ID" in bad_id.json()["detail"]
    assert [e.what for e in follow_task(server, alices, ROOT)][-1] == ("state", "COMPLETE")


def test_all_events_follow_the_filters_and_owner_rules(server: LiveServer) -> None:
    tag = {"batch": f"b{time.monotonic_ns()}"}
    # Opened before the tasks exist: the stream starts now, with new events only.
    with (
        stream(server, "/events?state=COMPLETE", ALICE) as alice_complete,
        stream(server, "/events?name_prefix=keep-", ALICE) as alice_named,
        stream(server, f"/events?tag_key=batch&tag_value={tag['batch']}", ROOT) as root_tagged,
        stream(server, "/events", BOB) as bob_all,
    ):
        for response in (alice_complete, alice_named, root_tagged, bob_all):
            assert response.status_code == 200
        time.sleep(1.0)  # each stream has read the watcher's horizon: "now" is behind it
        kept = create(server, shell("true", name="keep-1", tags=tag), ALICE)
        other = create(server, shell("exit 1", name="drop-1", tags=tag), ALICE)
        bobs = create(server, shell("true", name="keep-bob", tags=tag), BOB)

        completes = take(alice_complete, 1)
        named = take_until_final(alice_named, kept)
        tagged = take_until_final(root_tagged, kept, other, bobs)
        bob_seen = take_until_final(bob_all, bobs)

    assert [(e.data["task_id"], e.data["state"]) for e in completes] == [(kept, "COMPLETE")]
    assert {e.data["task_id"] for e in named} == {kept}
    assert named[-1].what == ("state", "COMPLETE")
    assert {e.data["task_id"] for e in tagged} == {kept, other, bobs}
    for task_id, final in ((kept, "COMPLETE"), (other, "EXECUTOR_ERROR"), (bobs, "COMPLETE")):
        mine = [e.what for e in tagged if e.data["task_id"] == task_id]
        assert mine[0] == ("state", "QUEUED")
        assert mine[-1] == ("state", final)
    assert {e.data["task_id"] for e in bob_seen} == {bobs}
    ids = [e.id for e in tagged]
    assert ids == sorted(ids)  # type: ignore[type-var]


def test_all_events_resume_and_replay_from_an_id(server: LiveServer) -> None:
    task_id = create(server, shell("true", name="replay"), ALICE)
    every = follow_task(server, task_id, ALICE)
    first_id = every[0].id
    assert first_id is not None

    with stream(server, f"/events?name_prefix=replay&last_event_id={first_id}", ALICE) as response:
        resumed = take(response, len(every) - 1)
    with stream(server, "/events?name_prefix=replay&last_event_id=0", ALICE) as response:
        replayed = take(response, len(every))

    assert [e.id for e in resumed] == [e.id for e in every[1:]]
    assert [e.id for e in replayed] == [e.id for e in every]


def test_bad_filters_are_400(server: LiveServer) -> None:
    for query, field in (
        ("state=DONE", "state"),
        ("tag_value=x", "tag_value"),
        ("last_event_id=-1", "last_event_id"),
        ("colour=red", "colour"),
    ):
        answer = requests.get(f"{server.api}/events?{query}", auth=ALICE, timeout=10)
        assert answer.status_code == 400, query
        assert field in answer.json()["detail"], answer.json()


def test_the_legacy_base_path_streams_too(server: LiveServer) -> None:
    task_id = create(server, shell("true"), ALICE)
    with requests.get(
        f"{server.url}/v1/tasks/{task_id}/events", auth=ALICE, stream=True, timeout=60
    ) as response:
        events = list(read_events(response))
    assert [e.what for e in events][-1] == ("state", "COMPLETE")


def test_a_hundred_and_twenty_followers_all_get_every_event(server: LiveServer) -> None:
    task_id_holder: list[str] = []
    ready = threading.Barrier(121)
    results: dict[int, list[Event]] = {}
    errors: list[BaseException] = []

    def per_task(number: int) -> None:
        try:
            ready.wait(timeout=60)
            results[number] = follow_task(server, task_id_holder[0], ALICE)
        except BaseException as exc:
            errors.append(exc)

    def everything(number: int) -> None:
        try:
            with stream(server, "/events?name_prefix=crowd", ALICE) as response:
                assert response.status_code == 200
                ready.wait(timeout=60)
                found: list[Event] = []
                for event in read_events(response):
                    found.append(event)
                    if event.data["state"] == "COMPLETE" and event.name == "state":
                        break
                results[number] = found
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=per_task, args=(n,)) for n in range(100)]
    threads += [threading.Thread(target=everything, args=(n,)) for n in range(100, 120)]
    for thread in threads[100:]:
        thread.start()
    time.sleep(1.0)
    task_id_holder.append(create(server, shell("sleep 1", name="crowd"), ALICE))
    for thread in threads[:100]:
        thread.start()
    ready.wait(timeout=60)
    for thread in threads:
        thread.join(timeout=FOLLOW_TIMEOUT_S)

    assert errors == []
    assert len(results) == 120
    expected = [e.what for e in results[0]]
    assert expected[0] == ("state", "QUEUED")
    assert expected[-1] == ("state", "COMPLETE")
    for number, found in results.items():
        assert [e.what for e in found] == expected, number


def test_streams_beyond_the_workers_slots_are_503(tmp_path: Path) -> None:
    overlay = tmp_path / "slots.yaml"
    overlay.write_text("custom:\n  streams:\n    max_per_worker: 2\n    keepalive_s: 1\n")
    with live_server(tmp_path, "--config", str(overlay), "--workers", "1") as small:
        task_id = create(small, shell("sleep 600"))
        first = stream(small, f"/tasks/{task_id}/events")
        second = stream(small, "/events")
        try:
            refused = requests.get(f"{small.api}/tasks/{task_id}/events", timeout=10)
            # Ordinary requests still pass while every stream slot is taken.
            ordinary = requests.get(f"{small.api}/tasks/{task_id}", timeout=10)
        finally:
            first.close()
            second.close()
        assert (first.status_code, second.status_code) == (200, 200)
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "5"
        assert ordinary.status_code == 200
        requests.post(f"{small.api}/tasks/{task_id}:cancel", timeout=10)


def test_the_cli_follows_events_and_waits_on_them(server: LiveServer) -> None:
    env = {**os.environ, "TESK_URL": server.url, "TESK_USER": "alice"}
    env["TESK_PASSWORD"] = "alice-pw"
    task_id = create(server, shell("sleep 1; exit 4"), ALICE)

    waited = subprocess.run(
        [TESK, "wait", "--interval", "60", task_id], env=env, capture_output=True, timeout=60
    )
    printed = subprocess.run(
        [TESK, "events", task_id], env=env, capture_output=True, text=True, timeout=60
    )

    # With a poll a minute, only the event stream can tell the end this soon.
    assert waited.returncode == 3, waited.stderr
    assert printed.returncode == 0, printed.stderr
    what = [line.split("\t")[2] for line in printed.stdout.splitlines()]
    assert what == [
        "QUEUED",
        "INITIALIZING",
        "RUNNING",
        "executor 0 started",
        "executor 0 ended (exit code 4)",
        "EXECUTOR_ERROR",
    ]
