"""Shared helpers of the API tests (this module holds no tests).

One Connexion app per test module (building it takes ~0.2 s); every test gets a fresh TesService
with its own MemoryStore and FakeBackend attached to that app.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from connexion import App
from flask.testing import FlaskClient
from openapi_schema_validator import OAS30ReadValidator, OAS30WriteValidator

from tesk.api.context import attach_service
from tesk.api.events import attach_feed
from tesk.app import build_feed, create_app, refusing_blocked_hosts
from tesk.config import CustomConfig
from tesk.quotas import Quotas
from tesk.service import TesService
from tesk.store.base import StoreUnavailable, TaskPage, TaskQuery, TaskRecord
from tesk.tes.progress import Progress
from tesk.tes.states import State
from tests.fakes.fake_backend import FakeBackend
from tests.fakes.memory_store import MemoryStore

BASES = ("/ga4gh/tes/v1", "/v1")
STARTED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def task_body(**fields: Any) -> dict[str, Any]:
    """A valid CreateTask body; keyword arguments replace top-level fields."""
    body: dict[str, Any] = {
        "name": "hello",
        "executors": [{"image": "alpine", "command": ["echo", "hello"]}],
    }
    body.update(fields)
    return body


@dataclass
class UrlChecks:
    """A check_url that records its calls and refuses URLs starting with `refuse`."""

    refuse: str = "bad://"
    calls: list[tuple[str, bool]] = field(default_factory=list)

    def __call__(self, url: str, for_output: bool) -> None:
        self.calls.append((url, for_output))
        if url.startswith(self.refuse):
            raise ValueError(f"cannot reach {url}")


class FlakyStore(MemoryStore):
    """A MemoryStore whose database can go away."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.queries: list[TaskQuery] = []

    def _check(self) -> None:
        if self.down:
            raise StoreUnavailable("connection refused")

    def create(self, record: TaskRecord) -> None:
        self._check()
        super().create(record)

    def get(self, task_id: str) -> TaskRecord | None:
        self._check()
        return super().get(task_id)

    def list_tasks(self, query: TaskQuery) -> TaskPage:
        self._check()
        self.queries.append(query)
        return super().list_tasks(query)

    def update(
        self,
        task_id: str,
        progress: Progress,
        *,
        expected: Collection[State] | None = None,
        worker: str | None = None,
    ) -> TaskRecord | None:
        self._check()
        return super().update(task_id, progress, expected=expected, worker=worker)

    def count_by_state(self, states: Collection[State]) -> dict[State, int]:
        self._check()
        return super().count_by_state(states)

    def ping(self) -> None:
        self._check()


@dataclass
class Api:
    app: App
    store: FlakyStore
    backend: FakeBackend
    urls: UrlChecks
    service: TesService

    @property
    def client(self) -> FlaskClient:
        return self.app.app.test_client()


def new_app(custom: CustomConfig | None = None) -> App:
    return create_app(
        custom or CustomConfig(),
        store=MemoryStore(),
        backend=FakeBackend(),
        check_url=UrlChecks(),
        storage=lambda: ["file:///srv/data"],
        started_at=STARTED,
    )


def attach(
    app: App,
    *,
    custom: CustomConfig | None = None,
    backend: FakeBackend | None = None,
    storage: Callable[[], Sequence[str]] | None = None,
) -> Api:
    """Give `app` a fresh service wired like create_app wires it."""
    custom = custom or CustomConfig()
    store = FlakyStore()
    backend = backend or FakeBackend()
    urls = UrlChecks()
    service = TesService(
        store,
        backend,
        limits=custom.limits,
        service_info=custom.service_info,
        version="9.9.9",
        started_at=STARTED,
        check_url=refusing_blocked_hosts(custom.filer, urls),
        storage=storage or (lambda: ["file:///srv/data"]),
        expose_owner=custom.auth.identity_in_metadata,
        quotas=Quotas(custom.quotas, store),
        streams=custom.streams,
    )
    attach_service(app.app, service)
    attach_feed(app.app, build_feed(custom, store))
    return Api(app=app, store=store, backend=backend, urls=urls, service=service)


class SpecSchemas:
    """Validates documents against the schemas of the specification the app serves."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec

    @classmethod
    def served_by(cls, client: FlaskClient, base: str = BASES[0]) -> SpecSchemas:
        response = client.get(f"{base}/openapi.json")
        assert response.status_code == 200
        return cls(response.get_json())

    def errors(
        self, name: str, document: Any, *, minimal: bool = False, write: bool = False
    ) -> list[str]:
        components = copy.deepcopy(self.spec["components"])
        if minimal:
            # MINIMAL views hold only id and state, though the spec requires `executors`.
            components["schemas"]["tesTask"]["required"].remove("executors")
        for schema_name, schema_object in components["schemas"].items():
            # Responses carry spec fields only: no property a TES object does not define.
            if schema_name.startswith("tes") and "properties" in schema_object:
                schema_object.setdefault("additionalProperties", False)
        schema = {"$ref": f"#/components/schemas/{name}", "components": components}
        validator_class = OAS30WriteValidator if write else OAS30ReadValidator
        validator = validator_class(schema)
        return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]

    def check(self, name: str, document: Any, *, minimal: bool = False) -> None:
        problems = self.errors(name, document, minimal=minimal)
        assert not problems, problems
