"""Where the request handlers find the TesService: the Flask app that serves them."""

from __future__ import annotations

from flask import Flask, current_app

from tesk.service import TesService

_SERVICE_KEY = "TESK_SERVICE"


def attach_service(app: Flask, service: TesService) -> None:
    app.config[_SERVICE_KEY] = service


def service() -> TesService:
    """The TesService of the app handling the current request."""
    found = current_app.config.get(_SERVICE_KEY)
    if not isinstance(found, TesService):
        raise RuntimeError("no TesService attached to this app (see tesk.app.create_app)")
    return found
