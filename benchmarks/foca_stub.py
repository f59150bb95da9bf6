"""The framework's ceiling: FOCA and Connexion serving the TES spec exactly as TESK configures
them (the same patches, strict validation, validators and error mapping), with controllers that
answer constants. The difference to bare Flask is what the framework costs; the difference to
TESK is what TESK's own work (store, views, metrics, logs) costs.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Flask
from foca.foca import Foca

from tesk.app import with_offline_spec
from tesk.settings import load_settings

CONTROLLER = "benchmarks.foca_stub"


def GetServiceInfo() -> dict[str, Any]:
    return {"id": "stub", "name": "stub", "type": {"group": "org.ga4gh", "artifact": "tes"}}


def ListTasks(**_filters: Any) -> dict[str, Any]:
    return {"tasks": []}


def CreateTask(body: Any) -> dict[str, Any]:
    return {"id": str(uuid.uuid4())}


def GetTask(id: str, view: str | None = None) -> dict[str, Any]:
    return {"id": id, "state": "QUEUED"}


def CancelTask(id: str) -> dict[str, Any]:
    return {}


def create_app() -> Flask:
    settings = load_settings(env={})
    conf = with_offline_spec(settings.foca)
    for spec in conf.api.specs:
        spec.add_operation_fields = {"x-openapi-router-controller": CONTROLLER}
    foca = Foca(config_file=list(settings.config_files))
    foca.conf = conf
    flask_app: Flask = foca.create_app().app
    return flask_app


app = create_app()
