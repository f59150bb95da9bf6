"""The TES HTTP client against the real API and canned servers on 127.0.0.1."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest
from connexion import App

from tesk.client.http import (
    ClientError,
    Credentials,
    ServerError,
    TesClient,
    base_url,
    tag_params,
)
from tesk.tes.states import State
from tests.unit.api.support import new_app
from tests.unit.client.support import (
    Canned,
    LiveApi,
    RecordingServer,
    closed_port_url,
    live_api,
    serving,
)


@pytest.fixture(scope="module")
def app() -> App:
    return new_app()


@pytest.fixture
def live(app: App) -> Iterator[LiveApi]:
    with live_api(app) as served:
        yield served


def task(name: str = "t", **tags: str) -> dict[str, object]:
    return {
        "name": name,
        "executors": [{"image": "alpine", "command": ["true"]}],
        "tags": tags,
    }


# -- base URLs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/ga4gh/tes/v1"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/ga4gh/tes/v1"),
        ("http://h:1/ga4gh/tes/v1", "http://h:1/ga4gh/tes/v1"),
        ("http://h:1/ga4gh/tes/v1/", "http://h:1/ga4gh/tes/v1"),
        ("https://h/prefix", "https://h/prefix/ga4gh/tes/v1"),
        ("https://h/prefix/ga4gh/tes/v1", "https://h/prefix/ga4gh/tes/v1"),
        ("http://h/v1", "http://h/v1"),
        (" http://h ", "http://h/ga4gh/tes/v1"),
    ],
)
def test_base_url_with_or_without_the_tes_base_path(given: str, expected: str) -> None:
    assert base_url(given) == expected


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("ftp://h", r"not an http\(s\) URL"),
        ("127.0.0.1:8080", r"not an http\(s\) URL"),
        ("http://", r"not an http\(s\) URL"),
        ("http://h/?x=1", "no query"),
        ("http://u:secret@h/#frag", "no query"),
    ],
)
def test_bad_base_urls_are_refused(given: str, says: str) -> None:
    with pytest.raises(ValueError, match=says) as info:
        base_url(given)
    assert "secret" not in str(info.value)


def test_tag_params_zip_keys_with_values_first() -> None:
    params = tag_params([("any", None), ("k", "v"), ("k2", "")])
    assert params == [
        ("tag_key", "k"),
        ("tag_key", "k2"),
        ("tag_key", "any"),
        ("tag_value", "v"),
        ("tag_value", ""),
    ]


# -- the TES operations against the real API --------------------------------------------------


def test_create_get_cancel_and_service_info(live: LiveApi) -> None:
    with TesClient(live.url) as client:
        task_id = client.create_task(task("one"))
        minimal = client.get_task(task_id)
        assert minimal == {"id": task_id, "state": "QUEUED"}
        basic = client.get_task(task_id, "BASIC")
        assert basic["name"] == "one"
        assert basic["executors"] == [{"image": "alpine", "command": ["true"]}]
        client.cancel_task(task_id)
        assert live.store.get(task_id).state == State.CANCELING
        info = client.service_info()
    assert info["type"] == {"group": "org.ga4gh", "artifact": "tes", "version": "1.1.0"}


@pytest.mark.parametrize("suffix", ["", "/ga4gh/tes/v1", "/v1"])
def test_every_base_path_form_reaches_the_api(live: LiveApi, suffix: str) -> None:
    with TesClient(live.url + suffix) as client:
        task_id = client.create_task(task())
        assert client.get_task(task_id)["state"] == "QUEUED"


def test_listing_filters_and_follows_page_tokens(live: LiveApi) -> None:
    with TesClient(live.url) as client:
        ids = [client.create_task(task(f"job-{i}", batch="b1")) for i in range(5)]
        other = client.create_task(task("other", batch="b2"))
        live.set_state(ids[0], State.COMPLETE)

        first = client.list_tasks(page_size=2)
        assert [t["id"] for t in first["tasks"]] == [other, ids[4]]
        assert first["next_page_token"]

        every = list(client.iter_tasks(page_size=2, name_prefix="job-"))
        assert [t["id"] for t in every] == list(reversed(ids))

        tagged = list(client.iter_tasks(tags=[("batch", "b2")]))
        assert [t["id"] for t in tagged] == [other]
        any_value = list(client.iter_tasks(tags=[("batch", None), ("batch", "b1")]))
        assert {t["id"] for t in any_value} == set(ids)

        done = list(client.iter_tasks(state="COMPLETE", view="BASIC"))
        assert [(t["id"], t["name"]) for t in done] == [(ids[0], "job-0")]


def test_server_errors_carry_status_and_detail(live: LiveApi) -> None:
    with TesClient(live.url) as client:
        with pytest.raises(ServerError) as missing:
            client.get_task("no-such-task")
        with pytest.raises(ServerError) as invalid:
            client.create_task({"executors": [{"image": "a", "command": ["x"], "workdir": "w"}]})
    assert missing.value.status == 404
    assert str(missing.value) == "404 Not Found: task 'no-such-task' not found"
    assert invalid.value.status == 400
    assert str(invalid.value).startswith("400 Bad Request: executors[0].workdir")


def test_task_ids_are_one_path_segment(live: LiveApi) -> None:
    with TesClient(live.url) as client, pytest.raises(ServerError) as info:
        client.get_task("a/../../service-info")
    assert info.value.status == 404


# -- failures a real server is not made to produce ---------------------------------------------


def test_connection_refused_is_one_line_without_traceback_text() -> None:
    url = closed_port_url()
    with TesClient(url, retries=0) as client, pytest.raises(ClientError) as info:
        client.service_info()
    message = str(info.value)
    assert message.startswith(f"cannot reach {url}/ga4gh/tes/v1: ")
    assert "Connection refused" in message
    assert "\n" not in message
    assert "object at 0x" not in message


def test_credentials_in_the_url_never_appear_in_errors() -> None:
    url = closed_port_url().replace("http://", "http://alice:s3cret@")
    with TesClient(url, retries=0) as client, pytest.raises(ClientError) as info:
        client.service_info()
    assert "s3cret" not in str(info.value)
    assert "***@127.0.0.1" in str(info.value)


def test_answers_that_are_not_json_objects() -> None:
    server = RecordingServer([Canned(200, "<html>hi</html>", "text/html"), Canned(200, "[1]")])
    with serving(server) as url, TesClient(url) as client:
        with pytest.raises(ClientError, match=r"the answer is not JSON \(200, text/html"):
            client.service_info()
        with pytest.raises(ClientError, match="not a JSON object"):
            client.service_info()


def test_error_bodies_of_other_servers_give_their_reason() -> None:
    server = RecordingServer(
        [
            Canned(400, json.dumps({"message": "bad\n  task"})),
            Canned(500, "<h1>Internal\nServer Error</h1>", "text/html"),
            Canned(404, ""),
        ]
    )
    with serving(server) as url, TesClient(url, retries=0) as client:
        with pytest.raises(ServerError, match=r"^400 Bad Request: bad task$"):
            client.create_task(task())
        with pytest.raises(ServerError, match=r"^500 Internal Server Error: <h1>Internal Server"):
            client.create_task(task())
        with pytest.raises(ServerError, match=r"^404 Not Found$"):
            client.create_task(task())


def test_reads_are_retried_on_503_but_creates_are_not() -> None:
    unavailable = Canned(503, json.dumps({"detail": "store down"}))
    server = RecordingServer([unavailable, unavailable, Canned(200, json.dumps({"name": "x"}))])
    with serving(server) as url, TesClient(url, retries=3, backoff_s=0.01) as client:
        assert client.service_info() == {"name": "x"}
    assert len(server.requests) == 3

    server = RecordingServer([unavailable])
    with (
        serving(server) as url,
        TesClient(url, retries=3) as client,
        pytest.raises(ServerError, match="503 Service Unavailable: store down"),
    ):
        client.create_task(task())
    assert len(server.requests) == 1


def test_a_create_answer_without_an_id_is_an_error() -> None:
    server = RecordingServer([Canned(200, json.dumps({"ok": True}))])
    with (
        serving(server) as url,
        TesClient(url) as client,
        pytest.raises(ClientError, match="without a task id"),
    ):
        client.create_task(task())


def test_a_page_token_that_repeats_stops_the_listing() -> None:
    page = json.dumps({"tasks": [{"id": "a"}], "next_page_token": "same"})
    server = RecordingServer([Canned(200, page)])
    with (
        serving(server) as url,
        TesClient(url) as client,
        pytest.raises(ClientError, match="same page token twice"),
    ):
        list(client.iter_tasks())
    assert [r["args"].get("page_token") for r in server.requests] == [None, ["same"]]


@pytest.mark.parametrize(
    ("credentials", "expected"),
    [
        (Credentials(token="tok-123"), "Bearer tok-123"),
        (
            Credentials(user="alice", password="pw:x"),
            "Basic " + base64.b64encode(b"alice:pw:x").decode(),
        ),
        (Credentials(), None),
    ],
)
def test_credentials_are_sent(credentials: Credentials, expected: str | None) -> None:
    server = RecordingServer()
    with serving(server) as url, TesClient(url, credentials) as client:
        client.service_info()
        client.list_tasks()
    assert [r["authorization"] for r in server.requests] == [expected, expected]
