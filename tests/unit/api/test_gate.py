"""The request gate: ordinary requests a few at a time, stream followers in slots of their own."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from tesk.api.gate import RequestGate, is_stream
from tesk.settings import ConfigError, WorkerModel

STREAM = "/ga4gh/tes/v1/tasks/abc/executors/0/stdout"


def environ(path: str, method: str = "GET") -> dict[str, Any]:
    return {"REQUEST_METHOD": method, "PATH_INFO": path}


class Recorder:
    def __init__(self) -> None:
        self.status: str | None = None
        self.headers: dict[str, str] = {}

    def __call__(self, status: str, headers: list[tuple[str, str]]) -> None:
        self.status = status
        self.headers = dict(headers)


def held_app(release: threading.Event, entered: threading.Semaphore) -> Callable[..., Any]:
    """A WSGI app whose every response waits for `release` while being sent."""

    def app(env: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [])
        entered.release()

        def body() -> Iterator[bytes]:
            release.wait(10)
            yield b"done"

        return body()

    return app


def consume(response: Iterable[bytes]) -> bytes:
    return b"".join(response)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/ga4gh/tes/v1/events", True),
        ("/v1/events", True),
        ("/ga4gh/tes/v1/tasks/abc/events", True),
        ("/ga4gh/tes/v1/tasks/abc/executors/0/stdout", True),
        ("/v1/tasks/abc/executors/12/stderr", True),
        ("/ga4gh/tes/v1/tasks/abc", False),
        ("/ga4gh/tes/v1/tasks", False),
        ("/ga4gh/tes/v1/tasks/abc/executors/0/stdin", False),
        ("/metrics", False),
    ],
)
def test_streams_are_recognised_by_path(path: str, expected: bool) -> None:
    assert is_stream(environ(path)) is expected
    assert is_stream(environ(path, "POST")) is False


def test_ordinary_requests_wait_for_the_gate_but_streams_do_not() -> None:
    release = threading.Event()
    entered = threading.Semaphore(0)
    gate = RequestGate(held_app(release, entered), requests=1, streams=2, retry_after_s=5)
    results: list[bytes] = []

    def call(path: str) -> None:
        results.append(consume(gate(environ(path), Recorder())))

    first = threading.Thread(target=call, args=("/ga4gh/tes/v1/tasks/a",))
    first.start()
    assert entered.acquire(timeout=5)
    second = threading.Thread(target=call, args=("/ga4gh/tes/v1/tasks/b",))
    second.start()
    # The second ordinary request cannot enter while the first is being sent ...
    assert not entered.acquire(timeout=0.3)
    # ... but a follower can.
    stream = threading.Thread(target=call, args=(STREAM,))
    stream.start()
    assert entered.acquire(timeout=5)
    release.set()
    for thread in (first, second, stream):
        thread.join(10)
    assert results == [b"done"] * 3
    assert entered.acquire(timeout=5)  # the second request entered once the first was sent


def test_streams_beyond_the_slots_get_503_with_retry_after() -> None:
    release = threading.Event()
    entered = threading.Semaphore(0)
    gate = RequestGate(held_app(release, entered), requests=4, streams=1, retry_after_s=7)
    following = gate(environ(STREAM), Recorder())
    chunks = iter(following)
    holder = threading.Thread(target=lambda: list(chunks))
    holder.start()
    assert entered.acquire(timeout=5)
    refused = Recorder()
    body = consume(gate(environ(STREAM), refused))
    assert str(refused.status).startswith("503")
    assert refused.headers["Retry-After"] == "7"
    assert json.loads(body)["status"] == 503
    assert "stream" in json.loads(body)["detail"]
    release.set()
    holder.join(10)
    # The slot is free again once the follower's response has been sent.
    again = Recorder()
    assert consume(gate(environ(STREAM), again)) == b"done"
    assert again.status == "200 OK"


def test_a_follower_that_goes_away_frees_its_slot() -> None:
    closed = threading.Event()

    def endless(env: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [])

        def body() -> Iterator[bytes]:
            try:
                while True:
                    yield b"line\n"
            finally:
                closed.set()

        return body()

    gate = RequestGate(endless, requests=1, streams=1, retry_after_s=5)
    response = gate(environ(STREAM), Recorder())
    iterator = iter(response)
    assert next(iterator) == b"line\n"
    iterator.close()  # type: ignore[attr-defined]  # what a server does when the client leaves
    assert closed.is_set()
    second = Recorder()
    assert next(iter(gate(environ(STREAM), second))) == b"line\n"
    assert second.status == "200 OK"


def test_without_stream_slots_every_stream_is_refused() -> None:
    gate = RequestGate(
        held_app(threading.Event(), threading.Semaphore(0)), requests=1, streams=0, retry_after_s=5
    )
    refused = Recorder()
    consume(gate(environ(STREAM), refused))
    assert str(refused.status).startswith("503")


def test_the_worker_model_comes_from_the_environment() -> None:
    assert WorkerModel.from_env({}) == WorkerModel("gthread", 4)
    assert WorkerModel.from_env({"TESK_WORKER_THREADS": "8"}).request_threads == 8
    sync = WorkerModel.from_env({"TESK_WORKER_CLASS": "sync", "TESK_WORKER_THREADS": "8"})
    assert (sync.request_threads, sync.streams) == (1, False)
    with pytest.raises(ConfigError, match="whole number"):
        WorkerModel.from_env({"TESK_WORKER_THREADS": "many"})
    with pytest.raises(ConfigError, match="at least 1"):
        WorkerModel.from_env({"TESK_WORKER_THREADS": "0"})
