"""How the composition root switches observability on (tesk/app.py, tesk/server.py)."""

from __future__ import annotations

import importlib
import os

from flask import Flask, Response

from tesk.config import CustomConfig, MetricsConfig
from tesk.observability.http import Caller, register_request_hooks
from tesk.observability.logs import ENV_LOG_FORMAT, configure_logging
from tesk.observability.multiproc import prepare_multiprocess_dir
from tesk.observability.recording import NullRecorder, Recorder
from tesk.observability.store import ObservedStore
from tesk.store.base import TaskStore

GUNICORN_LOGGER = "tesk.observability.gunicorn.Logger"
"""gunicorn's --logger-class: its own lines in TESK's log format."""

_process: dict[int, Recorder] = {}


def process_recorder(metrics: MetricsConfig) -> Recorder:
    """This process's recorder: Prometheus metrics when enabled (one per process), else none."""
    if not metrics.enabled:
        chosen: Recorder = NullRecorder()
    else:
        chosen = _process.get(os.getpid()) or _new_prometheus_recorder()
        _process[os.getpid()] = chosen
    return chosen


def observe_store(store: TaskStore, custom: CustomConfig) -> ObservedStore:
    """`store`, logging and recording every task state change applied through it."""
    if isinstance(store, ObservedStore):
        return store
    return ObservedStore(store, process_recorder(custom.metrics))


def instrument_app(
    app: Flask,
    store: TaskStore,
    custom: CustomConfig,
    version: str,
    *,
    caller: Caller | None = None,
) -> None:
    """Log format, a log line and latency per request (naming `caller()`, the authenticated
    user, when there is one), and /metrics (when enabled)."""
    configure_logging(custom.logging.format)
    recorder = process_recorder(custom.metrics)
    register_request_hooks(app, recorder, log_requests=custom.logging.requests, caller=caller)
    if not custom.metrics.enabled:
        return
    prometheus = importlib.import_module("tesk.observability.prometheus")

    def metrics() -> Response:
        own = recorder if isinstance(recorder, prometheus.PrometheusRecorder) else None
        body = prometheus.exposition(own, store, version)
        return Response(body, mimetype=prometheus.CONTENT_TYPE)

    app.add_url_rule("/metrics", "metrics", metrics, methods=["GET"])


def prepare_serving_process(custom: CustomConfig) -> None:
    """In `tesk serve`, before any store, backend or app exists: log format, and the metrics
    directory it and its API workers share (both inherited through the environment)."""
    configure_logging(custom.logging.format)
    os.environ[ENV_LOG_FORMAT] = custom.logging.format
    if custom.metrics.enabled:
        prepare_multiprocess_dir(custom.data_dir)


def _new_prometheus_recorder() -> Recorder:
    # Imported on first use: prometheus_client picks its multiprocess mode when imported, after
    # `tesk serve` exported the shared directory.
    prometheus = importlib.import_module("tesk.observability.prometheus")
    recorder: Recorder = prometheus.PrometheusRecorder()
    return recorder
