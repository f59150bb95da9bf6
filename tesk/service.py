"""TesService: the TES operations, independent of HTTP.

It validates requests, applies the TES rules, talks to the task store and the compute backend, and
returns JSON-ready documents. The composition root (tesk/app.py) gives it every collaborator.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from tesk.auth.identity import Identity
from tesk.backends.base import ComputeBackend, OutputStream
from tesk.config import LimitsConfig, ServiceInfoConfig, StreamsConfig
from tesk.logs.ended import TaskSnapshots
from tesk.logs.outputs import ExecutorOutputs, OutputResponse, parse_executor_index
from tesk.logs.ranges import parse_range
from tesk.quotas import Quotas
from tesk.store.base import (
    Cursor,
    StoreUnavailable,
    TaskDocuments,
    TaskQuery,
    TaskRecord,
    TaskStore,
)
from tesk.store.state_union import list_in_states
from tesk.tes.errors import InvalidRequest, ServiceUnavailable, TaskNotFound
from tesk.tes.models import Task, TaskLog, View, timestamp
from tesk.tes.progress import Progress
from tesk.tes.retries import MAX_ATTEMPTS, RetryPolicy
from tesk.tes.states import ACTIVE, State, as_tes_1_0, shown_to_tes_1_0_as
from tesk.tes.validation import (
    TaskLimits,
    check_task,
    input_uses_content,
    parse_page_size,
    parse_state,
    parse_task,
    parse_view,
    split_backend_parameters,
    tag_filter,
)
from tesk.tes.views import render_document

logger = logging.getLogger(__name__)

UrlCheck = Callable[[str, bool], None]
"""check_url(url, for_output): raise ValueError saying why TESK cannot use `url`."""

LEGACY_SERVICE_INFO_ID = "service-info"
"""py-tes 0.4 asks for GET /v1/tasks/service-info; no task ever has this id."""

TES_TYPE = {"group": "org.ga4gh", "artifact": "tes", "version": "1.1.0"}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CANCEL_ATTEMPTS = 10


class TesService:
    def __init__(
        self,
        store: TaskStore,
        backend: ComputeBackend,
        *,
        limits: LimitsConfig,
        service_info: ServiceInfoConfig,
        version: str,
        started_at: datetime,
        check_url: UrlCheck,
        storage: Callable[[], Sequence[str]],
        expose_owner: bool = False,
        quotas: Quotas | None = None,
        streams: StreamsConfig | None = None,
        retries: RetryPolicy | None = None,
    ) -> None:
        self._store = store
        self._retries = retries or RetryPolicy()
        self._quotas = quotas
        self._backend = backend
        self._limits = TaskLimits(
            max_executors=limits.max_executors,
            max_inputs=limits.max_inputs,
            max_outputs=limits.max_outputs,
            max_tags=limits.max_tags,
            max_content_bytes=limits.max_content_bytes,
            max_name_bytes=limits.max_name_bytes,
            max_tag_key_bytes=limits.max_tag_key_bytes,
            max_tag_value_bytes=limits.max_tag_value_bytes,
        )
        self._info = service_info
        self._version = version
        self._started_at = started_at
        self._check_url = check_url
        self._storage = storage
        self._expose_owner = expose_owner
        poll = (streams or StreamsConfig()).poll_interval_s
        self._outputs = ExecutorOutputs(backend, TaskSnapshots(store, poll), poll_interval_s=poll)

    # -- CreateTask ---------------------------------------------------------------------------

    def create(self, body: object, caller: Identity | None = None) -> str:
        """Validate and store a new task, hand it to the backend, and return its id.

        A task the backend refuses is kept as SYSTEM_ERROR with the reason in its system logs, so
        the client still gets an id to look at. The caller (None: authentication is off) owns it.
        """
        task = parse_task(body)
        check_task(task, self._limits)
        warnings = self._apply_backend_parameters(task)
        try:
            self._backend.check_task(task)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
        self._check_urls(task)
        if self._quotas is not None:
            with _store_available():
                self._quotas.check(caller)

        created_us = time.time_ns() // 1000
        task_id = str(uuid.uuid4())
        # `task` was parsed for this request alone: it becomes the stored document.
        task.id = task_id
        task.creation_time = timestamp(_EPOCH + timedelta(microseconds=created_us))
        for server_field in ("state", "logs"):
            setattr(task, server_field, None)
            task.model_fields_set.discard(server_field)
        record = TaskRecord(
            id=task_id,
            state=State.QUEUED,
            created_us=created_us,
            task=task,
            name=task.name,
            owner=caller.subject if caller is not None else None,
            log=TaskLog(system_logs=warnings) if warnings else None,
            tags=dict(task.tags or {}),
        )
        with _store_available():
            self._store.create(record)
        try:
            self._backend.submit(record)
        except Exception as exc:
            logger.warning("task %s: the backend did not accept it: %s", task_id, exc)
            with _store_available():
                self._store.update(
                    task_id,
                    Progress(
                        state=State.SYSTEM_ERROR,
                        system_logs=(f"the backend did not accept the task: {exc}",),
                    ),
                )
        return task_id

    def _apply_backend_parameters(self, task: Task) -> list[str]:
        """Keep the supported backend_parameters; return warnings about dropped ones."""
        resources = task.resources
        if resources is None or not resources.backend_parameters:
            return []
        supported = self.supported_backend_parameters()
        kept, unsupported = split_backend_parameters(resources.backend_parameters, supported)
        offered = ", ".join(supported) if supported else "none"
        if unsupported and resources.backend_parameters_strict:
            raise InvalidRequest(
                "resources.backend_parameters: not supported by this service: "
                f"{', '.join(unsupported)} (supported: {offered}); "
                "backend_parameters_strict is true"
            )
        try:
            self._retries.check_backend_parameters(kept)
            self._backend.check_backend_parameters(kept)
        except ValueError as exc:
            raise InvalidRequest(f"resources.backend_parameters: {exc}") from None
        if kept:
            resources.backend_parameters = kept
        else:
            resources.backend_parameters = None
            resources.model_fields_set.discard("backend_parameters")
        return [
            f"backend_parameters: ignored unsupported key {key!r} (supported: {offered})"
            for key in unsupported
        ]

    def supported_backend_parameters(self) -> list[str]:
        """The backend's parameters and max_attempts, which the retry policy of every backend
        reads."""
        return sorted({*self._backend.supported_backend_parameters(), MAX_ATTEMPTS})

    def _check_urls(self, task: Task) -> None:
        for index, item in enumerate(task.inputs or []):
            if not input_uses_content(item) and item.url:
                self._check_one_url(item.url, False, f"inputs[{index}].url")
        for index, output in enumerate(task.outputs or []):
            self._check_one_url(output.url, True, f"outputs[{index}].url")

    def _check_one_url(self, url: str, for_output: bool, where: str) -> None:
        try:
            self._check_url(url, for_output)
        except ValueError as exc:
            raise InvalidRequest(f"{where}: {exc}") from None

    # -- GetTask, ListTasks -------------------------------------------------------------------

    def get(
        self,
        task_id: str,
        view: str | None = None,
        caller: Identity | None = None,
        *,
        tes_1_0_client: bool = False,
    ) -> dict[str, Any]:
        """The task in `view`; a TES 1.0 client is shown TES 1.0 states (TES_1_0_STATES)."""
        chosen = parse_view(view)
        with _store_available():
            found = self._store.read(task_id, with_documents=chosen is not View.MINIMAL)
        if found is None or not may_see(caller, found.owner):
            raise TaskNotFound(task_id)
        return self._render(found, chosen, tes_1_0_client)

    def list_tasks(
        self,
        *,
        view: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
        name_prefix: str | None = None,
        state: str | None = None,
        tag_keys: Sequence[str] = (),
        tag_values: Sequence[str] = (),
        caller: Identity | None = None,
        tes_1_0_client: bool = False,
    ) -> dict[str, Any]:
        """A page of tasks; a TES 1.0 client filters by, and is shown, TES 1.0 states."""
        chosen = parse_view(view)
        wanted = parse_state(state)
        query = TaskQuery(
            page_size=parse_page_size(page_size),
            after=decode_page_token(page_token) if page_token else None,
            name_prefix=name_prefix or None,
            state=wanted,
            tags=tag_filter(tag_keys, tag_values),
            owner=caller.subject if caller is not None and not caller.admin else None,
            with_documents=chosen is not View.MINIMAL,
        )
        with _store_available():
            if tes_1_0_client and wanted is not None:
                # `state=SYSTEM_ERROR` finds the tasks this client is shown as SYSTEM_ERROR.
                page = list_in_states(self._store, query, shown_to_tes_1_0_as(wanted))
            else:
                page = self._store.list_documents(query)
        response: dict[str, Any] = {
            "tasks": [self._render(t, chosen, tes_1_0_client) for t in page.tasks]
        }
        if page.next_cursor is not None:
            response["next_page_token"] = encode_page_token(page.next_cursor)
        return response

    # -- executors' output (a TESK extension) --------------------------------------------------

    def executor_output(
        self,
        task_id: str,
        index: str,
        stream: OutputStream,
        caller: Identity | None = None,
        *,
        byte_range: str | None = None,
        follow: bool = False,
    ) -> OutputResponse:
        """What executor `index` wrote to `stream`: all of it, the part `byte_range` (a Range
        header) names, or (`follow`) all of it and then what comes until the executor ends."""
        position = parse_executor_index(index)
        wanted = parse_range(byte_range)
        with _store_available():
            found = self._store.read(task_id)
        if found is None or not may_see(caller, found.owner):
            raise TaskNotFound(task_id)
        return self._outputs.respond(found, position, stream, wanted=wanted, follow=follow)

    # -- CancelTask ---------------------------------------------------------------------------

    def cancel(self, task_id: str, caller: Identity | None = None) -> None:
        """Store CANCELING (compare-and-set from an active state) and tell the backend.

        Cancelling a task that is already finished or being cancelled changes nothing.
        """
        with _store_available():
            for _ in range(_CANCEL_ATTEMPTS):
                record = self._store.get(task_id)
                if record is None or not may_see(caller, record.owner):
                    raise TaskNotFound(task_id)
                if record.state not in ACTIVE:
                    return
                previous = record.state
                if self._store.update(
                    task_id, Progress(state=State.CANCELING), expected={previous}
                ):
                    break
            else:
                raise ServiceUnavailable(f"task {task_id!r} kept changing state; retry the cancel")
        try:
            self._backend.cancel(task_id, previous)
        except Exception as exc:
            logger.warning("task %s: the backend could not cancel it yet: %s", task_id, exc)
            with _store_available():
                self._store.update(
                    task_id,
                    Progress(
                        state=State.CANCELING,
                        system_logs=(
                            f"cancel: the backend could not tear the task down yet: {exc}",
                        ),
                    ),
                )

    # -- GetServiceInfo -----------------------------------------------------------------------

    def service_info(self) -> dict[str, Any]:
        info = self._info
        document: dict[str, Any] = {
            "id": info.id,
            "name": info.name,
            "type": dict(TES_TYPE),
            "description": info.description,
            "organization": info.organization.model_dump(),
            "contactUrl": info.contactUrl,
            "documentationUrl": info.documentationUrl,
            "createdAt": timestamp(self._started_at),
            "updatedAt": timestamp(self._started_at),
            "environment": info.environment,
            "version": info.version or self._version,
            "storage": self.storage(),
            "tesResources_backend_parameters": self.supported_backend_parameters(),
        }
        return {key: value for key, value in document.items() if value is not None}

    def legacy_service_info(self) -> dict[str, Any]:
        """The service-info shape of TES 0.3, which py-tes 0.4 still asks for."""
        return {"name": self._info.name, "doc": self._info.description, "storage": self.storage()}

    def storage(self) -> list[str]:
        if self._info.storage is not None:
            return list(self._info.storage)
        return list(self._storage())

    # -- probes -------------------------------------------------------------------------------

    def ready(self) -> None:
        """Raise ServiceUnavailable when the task store cannot be reached."""
        with _store_available():
            self._store.ping()

    def _render(self, found: TaskDocuments, view: View, tes_1_0_client: bool) -> dict[str, Any]:
        log = found.log
        if self._expose_owner and found.owner is not None and view is not View.MINIMAL:
            log = dict(log) if log is not None else TaskLog().dump()
            log["metadata"] = {**(log.get("metadata") or {}), "owner": found.owner}
        state = as_tes_1_0(found.state) if tes_1_0_client else found.state
        return render_document(
            view,
            task_id=found.id,
            state=state,
            task=found.task,
            log=log,
            attempts=found.attempts,
        )


def may_see(caller: Identity | None, owner: str | None) -> bool:
    """Whether `caller` may see (and cancel) a task of `owner`: its owner, an admin, or anyone
    without auth.

    Others get 404, as for an unknown id, so that ids of other users' tasks cannot be probed.
    """
    return caller is None or caller.admin or owner == caller.subject


@contextmanager
def _store_available() -> Iterator[None]:
    try:
        yield
    except StoreUnavailable as exc:
        raise ServiceUnavailable(f"the task store is unavailable: {exc}") from exc


def encode_page_token(cursor: Cursor) -> str:
    raw = f"{cursor.created_us}:{cursor.task_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str) -> Cursor:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        created, task_id = raw.split(":", 1)
        if not created.isdigit() or not task_id:
            raise ValueError(raw)
        return Cursor(created_us=int(created), task_id=task_id)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidRequest(
            "page_token: not a token this service issued (use next_page_token of a ListTasks "
            "response)"
        ) from None
