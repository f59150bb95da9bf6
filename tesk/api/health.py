"""Probes outside the TES base path: /healthz (process serves), /readyz (store answers)."""

from __future__ import annotations

from flask import Flask, Response, jsonify

from tesk.api.context import service
from tesk.tes.errors import ServiceUnavailable


def register_health_routes(app: Flask) -> None:
    app.add_url_rule("/healthz", "healthz", _healthz, methods=["GET"])
    app.add_url_rule("/readyz", "readyz", _readyz, methods=["GET"])


def _healthz() -> Response:
    return jsonify(status="ok")


def _readyz() -> tuple[Response, int]:
    try:
        service().ready()
    except ServiceUnavailable as exc:
        return jsonify(status="unavailable", detail=str(exc)), 503
    return jsonify(status="ready"), 200
