"""TesService without HTTP: what it stores, what it asks of the backend, how it pages."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tesk.config import CustomConfig
from tesk.service import TesService, decode_page_token, encode_page_token
from tesk.store.base import Cursor, TaskRecord
from tesk.tes.errors import InvalidRequest, ServiceUnavailable, TaskNotFound
from tesk.tes.models import timestamp
from tesk.tes.progress import Progress
from tesk.tes.retries import RetryPolicy
from tesk.tes.states import State
from tests.fakes.fake_backend import FakeBackend
from tests.unit.api.support import FlakyStore, UrlChecks, task_body


def make_service(
    store: FlakyStore | None = None,
    backend: FakeBackend | None = None,
    retries: RetryPolicy | None = None,
) -> tuple[TesService, FlakyStore, FakeBackend, UrlChecks]:
    store = store or FlakyStore()
    backend = backend or FakeBackend()
    urls = UrlChecks()
    custom = CustomConfig()
    service = TesService(
        store,
        backend,
        limits=custom.limits,
        service_info=custom.service_info,
        version="1.2.3",
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
        check_url=urls,
        storage=lambda: ["s3://"],
        retries=retries,
    )
    return service, store, backend, urls


def test_create_stores_what_the_client_sent_with_id_and_creation_time() -> None:
    service, store, backend, _ = make_service()
    body = task_body(
        state="COMPLETE",  # server fields a client may not set are dropped
        logs=[{"logs": [], "outputs": []}],
        unknown_field="dropped",
        tags={"a": "b"},
    )
    task_id = service.create(body)
    assert uuid.UUID(task_id).version == 4
    record = store.get(task_id)
    assert record is not None
    assert record.state is State.QUEUED
    assert record.tags == {"a": "b"}
    assert record.log is None
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert record.task.creation_time == timestamp(epoch + timedelta(microseconds=record.created_us))
    assert set(record.task.dump()) == {"id", "name", "executors", "tags", "creation_time"}
    assert backend.submitted == [record]


def test_any_submit_failure_ends_the_task_as_system_error() -> None:
    class Exploding(FakeBackend):
        def submit(self, record: TaskRecord) -> None:
            raise RuntimeError("runner gone")

    service, store, _, _ = make_service(backend=Exploding())
    task_id = service.create(task_body())
    record = store.get(task_id)
    assert record is not None
    assert record.state is State.SYSTEM_ERROR
    assert record.log is not None
    assert record.log.system_logs == ["the backend did not accept the task: runner gone"]


def test_urls_are_checked_unless_content_wins() -> None:
    service, _, _, urls = make_service()
    service.create(
        task_body(
            inputs=[
                {"url": "s3://b/a", "path": "/data/a"},
                {"url": "s3://b/ignored", "path": "/data/b", "content": "inline"},
                {"url": "s3://b/c", "path": "/data/c", "content": ""},  # empty: the url is used
                {"path": "/data/d", "content": ""},  # an empty file
            ],
            outputs=[{"url": "s3://b/out", "path": "/data/out"}],
        )
    )
    assert urls.calls == [("s3://b/a", False), ("s3://b/c", False), ("s3://b/out", True)]


def test_create_validates_before_storing() -> None:
    service, store, backend, _ = make_service()
    with pytest.raises(InvalidRequest, match=r"executors\[0\]\.command"):
        service.create({"executors": [{"image": "a", "command": []}]})
    with pytest.raises(InvalidRequest, match="JSON object"):
        service.create(["not", "a", "task"])
    assert store.find(set(State)) == []
    assert backend.submitted == []


def test_backend_parameters_with_the_same_key_in_two_cases_are_refused() -> None:
    service, store, _, _ = make_service(backend=FakeBackend(["queue"]))
    body = task_body(resources={"backend_parameters": {"queue": "a", "QUEUE": "b"}})
    with pytest.raises(InvalidRequest, match="case-insensitive"):
        service.create(body)
    assert store.find(set(State)) == []


def test_max_attempts_is_kept_up_to_the_configured_bound() -> None:
    service, store, _, _ = make_service(retries=RetryPolicy(max_attempts=3))
    kept = service.create(task_body(resources={"backend_parameters": {"Max_Attempts": "2"}}))
    record = store.get(kept)
    assert record is not None
    assert record.task.resources is not None
    assert record.task.resources.backend_parameters == {"max_attempts": "2"}
    assert record.log is None  # no warning: the parameter is supported

    for value, problem in (("4", "from 1 to 3 .retries.max_attempts."), ("0", "whole number")):
        body = task_body(resources={"backend_parameters": {"max_attempts": value}})
        with pytest.raises(InvalidRequest, match=f"backend_parameters: max_attempts: .*{problem}"):
            service.create(body)
    assert len(store.find(set(State))) == 1


class RacingStore(FlakyStore):
    """Moves a task to `race_to` just before the first compare-and-set of a cancel."""

    def __init__(self, race_to: State) -> None:
        super().__init__()
        self.race_to = race_to
        self.raced = False

    def update(
        self,
        task_id: str,
        progress: Progress,
        *,
        expected: Collection[State] | None = None,
        worker: str | None = None,
    ) -> TaskRecord | None:
        if expected is not None and not self.raced:
            self.raced = True
            super().update(task_id, Progress(state=self.race_to, seq=1))
        return super().update(task_id, progress, expected=expected, worker=worker)


def test_cancel_uses_compare_and_set_and_reports_the_state_it_replaced() -> None:
    service, store, backend, _ = make_service(store=RacingStore(State.INITIALIZING))
    task_id = service.create(task_body())
    service.cancel(task_id)
    record = store.get(task_id)
    assert record is not None
    assert record.state is State.CANCELING
    assert backend.cancelled == [(task_id, State.INITIALIZING)]


def test_cancel_of_a_task_that_finishes_meanwhile_changes_nothing() -> None:
    service, store, backend, _ = make_service(store=RacingStore(State.COMPLETE))
    task_id = service.create(task_body())
    service.cancel(task_id)
    record = store.get(task_id)
    assert record is not None
    assert record.state is State.COMPLETE
    assert backend.cancelled == []


def test_cancel_and_get_of_unknown_tasks() -> None:
    service, _, _, _ = make_service()
    with pytest.raises(TaskNotFound):
        service.cancel("nope")
    with pytest.raises(TaskNotFound):
        service.get("nope")


def test_list_passes_filters_to_the_store() -> None:
    service, store, _, _ = make_service()
    service.list_tasks(
        view="BASIC",
        page_size=10,
        name_prefix="x",
        state="RUNNING",
        tag_keys=["a", "b"],
        tag_values=["1", ""],
    )
    query = store.queries[-1]
    assert query.page_size == 10
    assert query.name_prefix == "x"
    assert query.state is State.RUNNING
    assert list(query.tags) == [("a", "1"), ("b", None)]
    assert query.with_documents is True
    assert query.after is None


def test_page_tokens_round_trip_and_reject_forgeries() -> None:
    cursor = Cursor(created_us=1_700_000_000_123_456, task_id="0f6f6c9e-id:with:colons")
    token = encode_page_token(cursor)
    assert "=" not in token
    assert decode_page_token(token) == cursor
    for forged in ("", "!!!", "bm9jb2xvbg", "eDp5", "MTI6"):  # "", junk, "nocolon", "x:y", "12:"
        with pytest.raises(InvalidRequest, match="page_token"):
            decode_page_token(forged)


def test_list_pages_with_the_token_as_cursor() -> None:
    service, store, _, _ = make_service()
    created = [service.create(task_body()) for _ in range(3)]
    first = service.list_tasks(page_size=2)
    assert [t["id"] for t in first["tasks"]] == created[:0:-1]
    second = service.list_tasks(page_size=2, page_token=first["next_page_token"])
    assert [t["id"] for t in second["tasks"]] == created[:1]
    assert "next_page_token" not in second
    assert store.queries[-1].after == decode_page_token(first["next_page_token"])


def test_service_info_leaves_out_unset_fields() -> None:
    service, _, _, _ = make_service(backend=FakeBackend(["b", "a"]))
    info: dict[str, Any] = service.service_info()
    assert None not in info.values()
    assert "contactUrl" not in info
    assert info["version"] == "1.2.3"
    assert info["storage"] == ["s3://"]
    # max_attempts is every backend's: the retry policy reads it.
    assert info["tesResources_backend_parameters"] == ["a", "b", "max_attempts"]
    assert service.legacy_service_info()["storage"] == ["s3://"]


def test_store_outage_is_service_unavailable() -> None:
    service, store, backend, _ = make_service()
    store.down = True
    with pytest.raises(ServiceUnavailable, match="connection refused"):
        service.create(task_body())
    with pytest.raises(ServiceUnavailable):
        service.ready()
    assert backend.submitted == []
