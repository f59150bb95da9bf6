"""One function per TES operationId (routed by Connexion); each calls the TesService."""

from __future__ import annotations

from typing import Any

from flask import request

from tesk.api.context import service
from tesk.api.security import current_caller
from tesk.service import LEGACY_SERVICE_INFO_ID

LEGACY_BASE_PATH = "/v1"
"""Where TES 1.0 clients (py-tes 0.4, the Snakemake and Toil plugins) find the API."""


def GetServiceInfo() -> dict[str, Any]:
    return service().service_info()


def ListTasks(
    name_prefix: str | None = None,
    state: str | None = None,
    tag_key: list[str] | str | None = None,
    tag_value: list[str] | str | None = None,
    page_size: int | None = None,
    page_token: str | None = None,
    view: str | None = None,
) -> dict[str, Any]:
    return service().list_tasks(
        view=view,
        page_size=page_size,
        page_token=page_token,
        name_prefix=name_prefix,
        # Connexion fills in the schema's default (UNKNOWN) when the client sent no state.
        state=state if "state" in request.args else None,
        tag_keys=_as_list(tag_key),
        tag_values=_as_list(tag_value),
        caller=current_caller(),
        tes_1_0_client=_tes_1_0_client(),
    )


def CreateTask(body: Any) -> dict[str, Any]:
    return {"id": service().create(body, current_caller())}


def GetTask(id: str, view: str | None = None) -> dict[str, Any]:
    # `GET /v1/tasks/service-info` is where TES 0.3 clients (py-tes 0.4) look for service-info.
    if id == LEGACY_SERVICE_INFO_ID:
        return service().legacy_service_info()
    return service().get(id, view, current_caller(), tes_1_0_client=_tes_1_0_client())


def CancelTask(id: str) -> dict[str, Any]:
    service().cancel(id, current_caller())
    return {}


def _as_list(value: list[str] | str | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


def _tes_1_0_client() -> bool:
    # Connexion registers each API of the FOCA config as a blueprint named after its base path.
    return request.blueprint == LEGACY_BASE_PATH
