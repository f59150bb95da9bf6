"""Logs: redaction of secrets, JSON and text output, one line per request, the config knob."""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from gunicorn.config import Config as GunicornConfig

from tesk.app import create_app
from tesk.auth.users import User, hash_password, write_users
from tesk.config import AuthConfig, CustomConfig, LimitsConfig, LoggingConfig
from tesk.observability.gunicorn import Logger as GunicornTeskLogger
from tesk.observability.logs import (
    JsonFormatter,
    RedactingFormatter,
    TeskFormatter,
    configure_logging,
    log_format,
)
from tesk.observability.redact import redact
from tesk.settings import ConfigError, load_settings
from tests.fakes.fake_backend import FakeBackend
from tests.fakes.memory_store import MemoryStore
from tests.unit.api.support import UrlChecks, task_body


@pytest.fixture(autouse=True)
def text_mode() -> Iterator[None]:
    yield
    configure_logging("text", [])


# -- redaction ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("s3://AKIA:wJalr/K7@bucket/key", "s3://***@bucket/key"),
        ("get https://alice:pw@host:8443/x?y=1 failed", "get https://***@host:8443/x?y=1 failed"),
        ("ftp://bob@ftp.example.org/f", "ftp://***@ftp.example.org/f"),
        ("Authorization: Bearer eyJhbGciOi.abc.def", "Authorization: Bearer ***"),
        ("authorization=Basic dXNlcjpwYXNz", "authorization=Basic ***"),
        ("{'Authorization': 'token ghp_123'}", "{'Authorization': 'token ***'}"),
        ('"proxy-authorization": "Negotiate YII="', '"proxy-authorization": "Negotiate ***"'),
        ("header was Bearer abc.def-ghi", "header was Bearer ***"),
        (
            "https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIA%2F1&X-Amz-Signature=ab12&x=1",
            "https://b.s3.amazonaws.com/k?X-Amz-Credential=***&X-Amz-Signature=***&x=1",
        ),
        ("https://h/api?access_token=xyz#frag", "https://h/api?access_token=***#frag"),
        (
            "https://acc.blob.core.windows.net/c/b?sv=2022&sig=abc%3D",
            "https://acc.blob.core.windows.net/c/b?sv=2022&sig=***",
        ),
    ],
)
def test_secrets_are_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "GET /ga4gh/tes/v1/tasks ListTasks 200 1.2ms",
        "https://example.org/data/file.txt?version=2&keyword=x",
        "task 3f1c: RUNNING -> COMPLETE",
        "mail me at someone@example.org",
        "",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact(text) == text


# -- formatters -----------------------------------------------------------------------------------


def emit(logger: logging.Logger, formatter: logging.Formatter, *args: object, **kw: object) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        logger.info(*args, **kw)  # type: ignore[arg-type]
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_json_lines_carry_the_extra_fields_and_no_secrets() -> None:
    logger = logging.getLogger("tests.json")
    line = emit(
        logger,
        JsonFormatter(),
        'fetch %s said "no"\\',
        "https://u:hunter2@h/x",
        extra={"task_id": "t1", "status": 400, "url": "s3://k:s3cr3t@b/o", "n": None},
    )
    document = json.loads(line)
    assert document["message"] == 'fetch https://***@h/x said "no"\\'
    assert document["logger"] == "tests.json"
    assert document["level"] == "INFO"
    assert document["time"].endswith("+00:00")
    assert document["task_id"] == "t1"
    assert document["status"] == 400
    assert document["url"] == "s3://***@b/o"
    assert document["n"] is None
    assert "hunter2" not in line
    assert "s3cr3t" not in line


def test_exceptions_in_json_and_text_are_redacted() -> None:
    logger = logging.getLogger("tests.exc")
    try:
        raise ValueError("Authorization: Bearer tok-777 refused")
    except ValueError:
        for formatter in (JsonFormatter(), RedactingFormatter()):
            stream = io.StringIO()
            handler = logging.StreamHandler(stream)
            handler.setFormatter(formatter)
            logger.addHandler(handler)
            logger.propagate = False
            logger.setLevel(logging.INFO)
            logger.exception("it broke")
            logger.removeHandler(handler)
            assert "tok-777" not in stream.getvalue()
            assert "ValueError: Authorization: Bearer ***" in stream.getvalue()
    document = json.loads(emit(logger, JsonFormatter(), "x"))
    assert "exception" not in document


def test_configure_logging_switches_formats_and_never_wraps_twice() -> None:
    original = logging.Formatter("%(levelname)s|%(message)s")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(original)
    logger = logging.getLogger("tests.switch")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)

    configure_logging("text", [handler])
    wrapped = handler.formatter
    assert isinstance(wrapped, RedactingFormatter)
    assert wrapped.inner is original
    logger.info("to https://u:p@h/")
    configure_logging("json", [handler])
    assert handler.formatter is wrapped
    logger.info("as json")
    configure_logging("text", [handler])
    logger.info("text again")

    first, second, third = stream.getvalue().splitlines()
    assert first == "INFO|to https://***@h/"
    assert json.loads(second)["message"] == "as json"
    assert third == "INFO|text again"


def test_the_formatter_of_the_config_file_follows_the_mode() -> None:
    formatter = TeskFormatter("[{levelname}] {message}", style="{")
    logger = logging.getLogger("tests.tesk")
    assert (
        emit(logger, formatter, "Authorization: Bearer abc") == "[INFO] Authorization: Bearer ***\n"
    )
    configure_logging("json", [])
    assert log_format() == "json"
    document = json.loads(emit(logger, formatter, "x %s", "y", extra={"task_id": "t"}))
    assert (document["message"], document["task_id"]) == ("x y", "t")


def test_gunicorn_lines_use_the_same_formatter() -> None:
    config = GunicornConfig()
    config.set("errorlog", "-")
    config.set("accesslog", "-")
    logger = GunicornTeskLogger(config)
    handlers = [*logger.error_log.handlers, *logger.access_log.handlers]
    assert len(handlers) == 2
    assert all(isinstance(h.formatter, TeskFormatter) for h in handlers)
    stream = io.StringIO()
    handlers[0].setStream(stream)  # type: ignore[attr-defined]
    configure_logging("json", [])
    logger.info("Booting worker with pid: %s", 42)
    assert json.loads(stream.getvalue())["message"] == "Booting worker with pid: 42"


# -- the knob --------------------------------------------------------------------------------------


def test_log_format_from_the_environment() -> None:
    assert load_settings(env={}).custom.logging.format == "text"
    assert load_settings(env={"TESK_LOG_FORMAT": "json"}).custom.logging.format == "json"
    with pytest.raises(ConfigError, match=r"custom\.logging\.format: Input should be 'text' or"):
        load_settings(env={"TESK_LOG_FORMAT": "yaml"})


# -- request lines from the app --------------------------------------------------------------------


@pytest.fixture
def captured(capfd: pytest.CaptureFixture[str]) -> Iterator[Callable[[], str]]:
    """What the app's log handlers (FOCA's `log` config: stderr) write, as the app set them up."""
    capfd.readouterr()
    yield lambda: capfd.readouterr().err
    configure_logging("text")


def app_client(custom: CustomConfig) -> object:
    app = create_app(
        custom,
        store=MemoryStore(),
        backend=FakeBackend(),
        check_url=UrlChecks(refuse="bad://"),
        storage=lambda: [],
    )
    return app.app.test_client()


def test_text_request_lines_and_no_secrets(captured: Callable[[], str]) -> None:
    client = app_client(CustomConfig())
    headers = {"Authorization": "Bearer sekrit-token-123"}
    created = client.post("/ga4gh/tes/v1/tasks", json=task_body(), headers=headers)  # type: ignore[attr-defined]
    task_id = created.get_json()["id"]
    client.get(f"/v1/tasks/{task_id}?view=FULL", headers=headers)  # type: ignore[attr-defined]
    refused = client.post(  # type: ignore[attr-defined]
        "/ga4gh/tes/v1/tasks",
        json=task_body(inputs=[{"path": "/data/x", "url": "bad://user:hunter2@host/x"}]),
        headers=headers,
    )
    assert refused.status_code == 400
    client.get("/healthz")  # type: ignore[attr-defined]

    text = captured()
    requests = [line for line in text.splitlines() if line.endswith(" [tesk.requests]")]
    assert "] POST /ga4gh/tes/v1/tasks CreateTask 200 " in requests[0]
    assert requests[0].endswith(f"ms task={task_id} [tesk.requests]")
    assert f"] GET /v1/tasks/{task_id} GetTask 200 " in requests[1]
    assert "view=FULL" not in requests[1]
    assert "] POST /ga4gh/tes/v1/tasks CreateTask 400 " in requests[2]
    assert len(requests) == 3  # /healthz is logged at DEBUG only
    assert "cannot reach bad://***@host/x" in text
    assert "hunter2" not in text
    assert "sekrit-token-123" not in text


def test_json_request_lines(captured: Callable[[], str]) -> None:
    configure_logging("json", [])  # as TESK_LOG_FORMAT=json does when the process starts
    client = app_client(CustomConfig(logging=LoggingConfig(format="json")))
    created = client.post("/ga4gh/tes/v1/tasks", json=task_body())  # type: ignore[attr-defined]
    task_id = created.get_json()["id"]
    client.post(f"/ga4gh/tes/v1/tasks/{task_id}:cancel")  # type: ignore[attr-defined]
    lines = captured().splitlines()
    # No text-format line: FOCA's own, from building the app, are JSON too. (Other lines may be
    # Python's complaints about handlers of earlier tests whose captured streams are closed.)
    assert not [line for line in lines if line.startswith("[")]
    documents = [json.loads(line) for line in lines if line.startswith("{")]
    assert any(d["logger"].startswith("foca") for d in documents)
    requests = [d for d in documents if d["logger"] == "tesk.requests"]
    assert [
        {k: d[k] for k in ("method", "path", "operation", "status", "task_id")} for d in requests
    ] == [
        {
            "method": "POST",
            "path": "/ga4gh/tes/v1/tasks",
            "operation": "CreateTask",
            "status": 200,
            "task_id": task_id,
        },
        {
            "method": "POST",
            "path": f"/ga4gh/tes/v1/tasks/{task_id}:cancel",
            "operation": "CancelTask",
            "status": 200,
            "task_id": task_id,
        },
    ]
    assert all(isinstance(d["duration_ms"], float) for d in requests)


def test_request_lines_can_be_switched_off(captured: Callable[[], str]) -> None:
    client = app_client(CustomConfig(logging=LoggingConfig(requests=False)))
    client.post("/ga4gh/tes/v1/tasks", json=task_body())  # type: ignore[attr-defined]
    assert "[tesk.requests]" not in captured()


def test_a_request_turned_away_before_routing_is_logged_too(captured: Callable[[], str]) -> None:
    custom = CustomConfig(limits=LimitsConfig(max_body_bytes=1024))
    client = app_client(custom)
    too_big = client.post(  # type: ignore[attr-defined]
        "/ga4gh/tes/v1/tasks", data=b"{" + b" " * 2048 + b"}", content_type="application/json"
    )
    assert too_big.status_code == 413
    lines = [line for line in captured().splitlines() if line.endswith("[tesk.requests]")]
    assert len(lines) == 1
    assert "] POST /ga4gh/tes/v1/tasks CreateTask 413 " in lines[0]


def test_request_lines_name_the_authenticated_user(
    captured: Callable[[], str], tmp_path: Path
) -> None:
    users = tmp_path / "users"
    write_users(users, [User("alice", hash_password("pw-alice-123"), frozenset())])
    client = app_client(CustomConfig(auth=AuthConfig(mode="basic", users_file=users)))
    credentials = base64.b64encode(b"alice:pw-alice-123").decode()
    ok = client.get(  # type: ignore[attr-defined]
        "/ga4gh/tes/v1/tasks", headers={"Authorization": f"Basic {credentials}"}
    )
    refused = client.get("/ga4gh/tes/v1/tasks")  # type: ignore[attr-defined]
    assert (ok.status_code, refused.status_code) == (200, 401)
    text = captured()
    lines = [line for line in text.splitlines() if line.endswith("[tesk.requests]")]
    assert "ListTasks 200 " in lines[0]
    assert lines[0].endswith(" user=alice [tesk.requests]")
    assert "ListTasks 401 " in lines[1]
    assert "user=" not in lines[1]
    assert credentials not in text
    assert "pw-alice-123" not in text
