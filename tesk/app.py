"""Composition root: typed config -> store, backend, service -> the Connexion/Flask app.

This is the only module that knows every implementation; the others receive what they need.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from connexion import App
from flask import Flask
from foca.foca import Foca
from foca.models.config import Config

from tesk import __version__
from tesk.api.body import register_body_checks
from tesk.api.context import attach_service
from tesk.api.encoding import use_orjson
from tesk.api.errors import register_error_handlers
from tesk.api.events import attach_feed
from tesk.api.gate import RequestGate
from tesk.api.health import register_health_routes
from tesk.api.parameters import VALIDATOR_MAP
from tesk.api.security import attach_authenticator, current_caller, with_auth
from tesk.api.spec import serves_tes, service_info_schemas_patch
from tesk.auth.authenticator import Authenticator
from tesk.auth.network import check_url_host
from tesk.auth.users import UsersFileError
from tesk.backends.base import ComputeBackend
from tesk.config import AuthConfig, CustomConfig, FilerConfig
from tesk.dashboard import register_dashboard
from tesk.engine.stages import Stager
from tesk.events.feed import EventFeed
from tesk.events.watcher import EventWatcher
from tesk.filer import Filer, storage_locations
from tesk.filer import check_url as filer_check_url
from tesk.observability.stager import ObservedStager
from tesk.observability.wiring import instrument_app, observe_store, process_recorder
from tesk.quotas import Quotas
from tesk.service import TesService, UrlCheck
from tesk.settings import ConfigError, Settings, WorkerModel, load_settings
from tesk.store.base import TaskStore
from tesk.store.sql import SqlStore
from tesk.tes.retries import RetryPolicy

ENV_STARTED_AT = "TESK_STARTED_AT"
"""Set by `tesk serve` for its API workers, so that all report the same service start time."""

_BACKENDS = {"local": "tesk.backends.local", "kubernetes": "tesk.backends.kubernetes"}


def create_app(
    config: Settings | CustomConfig | None = None,
    *,
    store: TaskStore | None = None,
    backend: ComputeBackend | None = None,
    check_url: UrlCheck | None = None,
    storage: Callable[[], Sequence[str]] | None = None,
    started_at: datetime | None = None,
) -> App:
    """The TES app. What is not injected is built from the config.

    `config`: the effective settings (default: tesk/config.yaml + env overrides); a CustomConfig
    alone means the default FOCA config with that `custom` section (no env overrides).
    """
    settings = _as_settings(config)
    custom = settings.custom
    authenticator = build_authenticator(custom.auth)
    if store is None:
        store = build_store(custom)
    if backend is None:
        backend = build_backend(custom, store)
    service = TesService(
        store,
        backend,
        limits=custom.limits,
        service_info=custom.service_info,
        version=__version__,
        started_at=started_at or _started_at(),
        check_url=refusing_blocked_hosts(custom.filer, check_url or filer_url_check(custom.filer)),
        storage=storage or (lambda: advertised_storage(custom.filer)),
        expose_owner=custom.auth.identity_in_metadata,
        quotas=Quotas(custom.quotas, store),
        streams=custom.streams,
        retries=retry_policy(custom),
    )
    foca = Foca(config_file=list(settings.config_files))
    foca.conf = with_auth(with_offline_spec(settings.foca), custom.auth, serves_tes)
    cnx_app = foca.create_app()
    flask_app: Flask = cnx_app.app
    # FOCA's request hook answers 413 for larger bodies, declared or chunked.
    flask_app.config["MAX_CONTENT_LENGTH"] = custom.limits.max_body_bytes
    use_orjson(flask_app)
    attach_service(flask_app, service)
    attach_feed(flask_app, build_feed(custom, store))
    attach_authenticator(flask_app, authenticator)
    register_body_checks(flask_app, custom.limits.max_json_depth)
    register_error_handlers(cnx_app)
    register_health_routes(flask_app)
    register_dashboard(flask_app)
    instrument_app(flask_app, store, custom, __version__, caller=caller_subject)
    workers = WorkerModel.from_env(os.environ)
    flask_app.wsgi_app = RequestGate(  # type: ignore[method-assign]
        flask_app.wsgi_app,
        requests=workers.request_threads,
        streams=custom.streams.max_per_worker if workers.streams else 0,
        retry_after_s=custom.streams.retry_after_s,
    )
    return cnx_app


def wsgi() -> Flask:
    """WSGI factory for gunicorn (`tesk.app:wsgi()`); settings come from the environment."""
    app: Flask = create_app(load_settings()).app
    return app


def build_store(custom: CustomConfig) -> TaskStore:
    # Every state change of every task goes through the store: there it is logged and counted.
    return observe_store(SqlStore.from_config(custom), custom)


def build_feed(custom: CustomConfig, store: TaskStore) -> EventFeed:
    """Task events for this API process: one watcher of the store, started by the first
    follower (so a process that builds the app only to check it starts no thread)."""
    poll = custom.streams.poll_interval_s
    watcher = EventWatcher(store, poll)
    return EventFeed(store, watcher, keepalive_s=custom.streams.keepalive_s, retry_s=poll)


def build_backend(
    custom: CustomConfig, store: TaskStore, *, serving: bool = False
) -> ComputeBackend:
    """The configured backend for an API process, or (`serving`) for the serving process.

    An API process's backend only submits and cancels. The serving process's backend also has
    what `start()` runs: the local runner, with the filer as its stager, or the Kubernetes
    reconciler (the same object there: its API client is made on first use).
    """
    try:
        module = importlib.import_module(_BACKENDS[custom.backend])
    except ImportError as exc:
        raise ConfigError(f"backend {custom.backend!r} is not available: {exc}") from None
    if custom.backend == "kubernetes":
        return cast(ComputeBackend, module.KubernetesBackend(custom, store))
    if not serving:
        return cast(ComputeBackend, module.LocalBackend.for_api(custom, store))
    runner = module.LocalRunner(custom, store, stager=build_stager(custom))
    return cast(ComputeBackend, module.LocalBackend.serving(runner, store))


def retry_policy(custom: CustomConfig) -> RetryPolicy:
    """The retry policy of the configuration (tesk/tes/retries.py)."""
    return RetryPolicy(**custom.retries.model_dump())


def build_stager(custom: CustomConfig) -> Stager:
    """The filer, as the engine's stager, with its files, bytes and failures in this process's
    metrics. Only the serving process stages anything."""
    return ObservedStager(Filer(custom.filer), process_recorder(custom.metrics))


def filer_url_check(filer: FilerConfig) -> UrlCheck:
    """check_url(url, for_output) backed by the filer: can TESK transfer from/to this URL?"""

    def check_url(url: str, for_output: bool) -> None:
        filer_check_url(url, filer, for_output=for_output)

    return check_url


def refusing_blocked_hosts(filer: FilerConfig, check_url: UrlCheck) -> UrlCheck:
    """`check_url` that first refuses URLs into `filer.blocked_networks` (cloud metadata)."""
    networks = list(filer.blocked_networks)

    def check(url: str, for_output: bool) -> None:
        check_url_host(url, networks)
        check_url(url, for_output)

    return check


def caller_subject() -> str | None:
    """The authenticated user of the current request, for its log line (None: anonymous)."""
    caller = current_caller()
    return caller.subject if caller is not None else None


def build_authenticator(auth: AuthConfig) -> Authenticator:
    try:
        return Authenticator(auth)
    except UsersFileError as exc:
        raise ConfigError(f"invalid configuration: auth.users_file: {exc}") from None


def advertised_storage(filer: FilerConfig) -> list[str]:
    """service-info `storage`: the file roots and the URL schemes the filer accepts (the filer's
    own list, so that service-info offers exactly what CreateTask accepts, ftps:// included)."""
    return storage_locations(filer)


def _as_settings(config: Settings | CustomConfig | None) -> Settings:
    if isinstance(config, Settings):
        return config
    if config is None:
        return load_settings()
    settings = load_settings(env={})
    foca = settings.foca.model_copy(deep=True)
    setattr(foca, "custom", config)  # noqa: B010 (an extra field of FOCA's Config)
    return dataclasses.replace(settings, foca=foca, custom=config)


def with_offline_spec(conf: Config) -> Config:
    """A copy of `conf` whose TES specs also get the bundled service-info schemas as a patch, and
    TESK's parameter validator."""
    conf = conf.model_copy(deep=True)
    extra: dict[str, Any] = service_info_schemas_patch()
    for spec in conf.api.specs:
        if serves_tes(spec.path):
            spec.patches = [extra, *(spec.patches or [])]
            if spec.connexion is not None:
                # Passed through to Connexion's add_api (an extra field of FOCA's options).
                setattr(spec.connexion, "validator_map", VALIDATOR_MAP)  # noqa: B010
    return conf


def _started_at() -> datetime:
    value = os.environ.get(ENV_STARTED_AT)
    if value:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    return datetime.now(UTC)
