"""Property-based tests of the served TES API with Schemathesis, through the WSGI app.

The app has the real SQL store (SQLite in a temporary directory) and a backend that runs nothing.
Schemathesis generates requests from the specification TESK serves (valid ones and, in negative
mode, invalid ones) and checks every response: no 5xx, status codes and content types the
specification documents, bodies that match its schemas, a 4xx for invalid data, and in Basic mode
a 401 for requests without credentials. Bounded (examples per operation) and derandomized (a fixed
seed), so a run takes well under a minute and finds the same cases every time.

One known contradiction of TES 1.1 is taken into account: `tesTask` requires `executors`, yet the
MINIMAL view (the default of GetTask and ListTasks) is defined as `id` and `state` only. Responses
are validated against the served specification with that one requirement lifted.
"""

from __future__ import annotations

import base64
import copy
import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tesk.app import create_app
from tesk.auth.users import User, hash_password, write_users
from tesk.config import AuthConfig, CustomConfig
from tesk.store.sql import SqlStore
from tests.fakes.fake_backend import FakeBackend

MAX_EXAMPLES = 60
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,  # the fixed seed: the same examples in every run
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def served_app(auth: AuthConfig) -> Any:
    return create_app(
        CustomConfig(auth=auth),
        store=SqlStore(f"sqlite:///{tempfile.mkdtemp(prefix='tesk-schemathesis-')}/tesk.db"),
        backend=FakeBackend(["namespace"]),
        check_url=lambda url, for_output: None,
        storage=lambda: ["file:///srv/data"],
    ).app


def schema_of(app: Any) -> schemathesis.BaseSchema:
    spec: dict[str, Any] = app.test_client().get("/ga4gh/tes/v1/openapi.json").get_json()
    spec = copy.deepcopy(spec)
    spec["components"]["schemas"]["tesTask"]["required"].remove("executors")  # MINIMAL views
    schema = schemathesis.openapi.from_dict(spec)
    # The stream of every task's events never ends, and the test client reads a response whole:
    # its parameters are checked in tests/integration/test_events.py instead.
    schema = schema.exclude(path="/events")
    schema.app = app
    schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
    return schema


OPEN_APP = served_app(AuthConfig())
open_schema = schema_of(OPEN_APP)


@open_schema.parametrize()
@SETTINGS
def test_open_api_conforms(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=CHECKS)


def _users_file() -> Path:
    path = Path(tempfile.mkdtemp(prefix="tesk-schemathesis-")) / "users"
    write_users(path, [User("fuzzer", hash_password("fuzz"))])
    return path


BASIC_APP = served_app(AuthConfig(mode="basic", users_file=_users_file()))
basic_schema = schema_of(BASIC_APP)
CREDENTIALS = "Basic " + base64.b64encode(b"fuzzer:fuzz").decode()


@basic_schema.parametrize()
@SETTINGS
def test_basic_auth_api_conforms_and_enforces_credentials(case: schemathesis.Case) -> None:
    headers = dict(case.headers or {})
    headers["Authorization"] = CREDENTIALS
    case.call_and_validate(headers=headers, checks=[*CHECKS, ignored_auth])


@pytest.mark.parametrize("app", [OPEN_APP, BASIC_APP], ids=["open", "basic"])
def test_every_operation_is_exercised(app: Any) -> None:
    operations = {
        f"{op.ok().method.upper()} {op.ok().path}" for op in schema_of(app).get_all_operations()
    }
    assert operations == {
        "GET /service-info",
        "GET /tasks",
        "POST /tasks",
        "GET /tasks/{id}",
        "POST /tasks/{id}:cancel",
        # TESK's extensions (docs/api.md)
        "GET /tasks/{id}/executors/{index}/stdout",
        "GET /tasks/{id}/executors/{index}/stderr",
        "GET /tasks/{id}/events",
    }
