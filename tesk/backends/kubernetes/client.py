"""Connecting to the Kubernetes API: in-cluster credentials first, else a kubeconfig."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import urllib3
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from tesk.backends.base import BackendError

logger = logging.getLogger(__name__)

Obj = dict[str, Any]
T = TypeVar("T")

# The client's own annotations are partial (untyped functions, model classes where the API takes
# plain JSON too): TESK calls it through `Any` and keeps its own types at the edges.
_config: Any = config
_client: Any = client
_watch: Any = watch


def retry_policy() -> urllib3.Retry:
    """Retry what the API server did not process: refused connections and 429 (API priority and
    fairness). A request that may have been processed (read error, 5xx) is never sent again."""
    return urllib3.Retry(
        total=6,
        connect=6,
        read=0,
        status=6,
        backoff_factor=0.5,
        status_forcelist=(429,),
        allowed_methods=None,
        respect_retry_after_header=True,
        raise_on_status=False,
    )


def load_api_client(kubeconfig: Path | None = None) -> client.ApiClient:
    """An ApiClient for the configured kubeconfig, else in-cluster, else $KUBECONFIG/~/.kube."""
    configuration: Any = _client.Configuration()
    if kubeconfig is None:
        try:
            _config.load_incluster_config(client_configuration=configuration)
        except ConfigException:
            logger.debug("no in-cluster credentials; trying a kubeconfig")
            _from_kubeconfig(None, configuration)
    else:
        _from_kubeconfig(str(kubeconfig), configuration)
    configuration.retries = retry_policy()
    api: client.ApiClient = _client.ApiClient(configuration)
    return api


def _from_kubeconfig(path: str | None, configuration: Any) -> None:
    try:
        _config.load_kube_config(config_file=path, client_configuration=configuration)
    except (ConfigException, OSError) as exc:
        where = path or "$KUBECONFIG or ~/.kube/config"
        raise BackendError(
            f"no Kubernetes credentials: not in a cluster, and no usable kubeconfig at {where} "
            f"({exc})"
        ) from None


Kind = Literal["pods", "jobs", "configmaps", "persistentvolumeclaims", "events"]
# kind -> (API group attribute, the client's method name for that kind)
_METHODS: dict[str, tuple[str, str]] = {
    "pods": ("core", "namespaced_pod"),
    "jobs": ("batch", "namespaced_job"),
    "configmaps": ("core", "namespaced_config_map"),
    "persistentvolumeclaims": ("core", "namespaced_persistent_volume_claim"),
    "events": ("core", "namespaced_event"),
}


@dataclass
class Kube:
    """The calls TESK makes, over one ApiClient, with what every caller needs handled once:
    a timeout on each call, idempotent calls made again while the connection or the server
    fails transiently, 409 on create meaning "already there", 404 on delete meaning "gone".
    Other answers of the API server raise ApiException (`describe` words them)."""

    api: client.ApiClient

    def __post_init__(self) -> None:
        self._api: Any = self.api
        self.core: Any = _client.CoreV1Api(self.api)
        self.batch: Any = _client.BatchV1Api(self.api)

    def _method(self, verb: str, kind: Kind) -> Any:
        group, suffix = _METHODS[kind]
        return getattr(getattr(self, group), f"{verb}_{suffix}")

    def create(self, kind: Kind, namespace: str, body: Obj) -> Obj | None:
        """The created object, or None when one of that name exists already. A create is made
        again after a connection failure too: if the first had worked, the second answers 409."""
        call = self._method("create", kind)
        created = _none_if(
            409,
            lambda: retrying(
                lambda: call(namespace, body, _request_timeout=CALL_TIMEOUT_S),
                f"creating {kind} {body['metadata']['name']}",
            ),
        )
        return None if created is None else self.to_dict(created)

    def replace(self, kind: Kind, namespace: str, body: Obj) -> Obj:
        name = str(body["metadata"]["name"])
        call = self._method("replace", kind)
        return self.to_dict(
            retrying(
                lambda: call(name, namespace, body, _request_timeout=CALL_TIMEOUT_S),
                f"replacing {kind} {name}",
            )
        )

    def delete(
        self, kind: Kind, namespace: str, name: str, *, propagation: str | None = None
    ) -> bool:
        """False: it was not there."""
        call = self._method("delete", kind)
        extra: dict[str, Any] = {"_request_timeout": CALL_TIMEOUT_S}
        if propagation:
            extra["propagation_policy"] = propagation
        deleted = _none_if(
            404, lambda: retrying(lambda: call(name, namespace, **extra), f"deleting {kind} {name}")
        )
        return deleted is not None

    def list(self, kind: Kind, namespace: str, *, attempts: int = 8, **query: Any) -> Obj:
        """One page of `kind` (label_selector, field_selector, limit, _continue as the API)."""
        call = self._method("list", kind)
        return self.to_dict(
            retrying(
                lambda: call(namespace, _request_timeout=CALL_TIMEOUT_S, **query),
                f"listing {kind}",
                attempts=attempts,
            )
        )

    def read(self, kind: Kind, namespace: str, name: str) -> Obj | None:
        """The object, or None when it is not there."""
        call = self._method("read", kind)
        found = _none_if(
            404,
            lambda: retrying(
                lambda: call(name, namespace, _request_timeout=CALL_TIMEOUT_S),
                f"reading {kind} {name}",
            ),
        )
        return None if found is None else self.to_dict(found)

    def pod_log(self, namespace: str, name: str, container: str) -> str:
        def read() -> bytes:
            response = self.core.read_namespaced_pod_log(
                name,
                namespace,
                container=container,
                _preload_content=False,
                _request_timeout=CALL_TIMEOUT_S,
            )
            data: bytes = response.data
            return data

        return retrying(read, f"reading the log of pod {name}").decode(errors="replace")

    def to_dict(self, obj: Any) -> Obj:
        """API JSON (camelCase) of a deserialised object."""
        if isinstance(obj, dict):
            return obj
        data = self._api.sanitize_for_serialization(obj)
        return data if isinstance(data, dict) else {}

    def close(self) -> None:
        self._api.close()


def _none_if(status: int, call: Callable[[], Any]) -> Any:
    """`call()`, or None when the API server answers `status` (409: there; 404: not there)."""
    try:
        return call()
    except ApiException as exc:
        if status_of(exc) == status:
            return None
        raise


def new_watch() -> Any:
    """A `kubernetes.watch.Watch` (untyped in the client)."""
    return _watch.Watch()


# Failures of the connection, not answers of the API server: the server restarting, a proxy
# cutting the connection, a read that timed out. An idempotent call is simply made again.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    urllib3.exceptions.HTTPError,  # ProtocolError, ReadTimeoutError, MaxRetryError, ...
    ConnectionError,
    TimeoutError,
)
# Everything a call may raise: the API server's answers and the connection's failures.
CALL_ERRORS: tuple[type[BaseException], ...] = (ApiException, *TRANSIENT_ERRORS)
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
CALL_TIMEOUT_S = (10, 60)  # connect, read: no call may hang for ever


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, ApiException):
        return status_of(exc) in TRANSIENT_STATUSES
    return isinstance(exc, TRANSIENT_ERRORS)


def retrying(
    call: Callable[[], T], what: str, *, attempts: int = 8, first_pause_s: float = 0.5
) -> T:
    """`call()`, made again with capped exponential backoff while it fails transiently.

    Only for calls that may be made twice: reads, deletes, replaces, and creates whose caller
    takes 409 for "already there" (Kube.create)."""
    pause = first_pause_s
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Exception as exc:
            if attempt == attempts or not is_transient(exc):
                raise
            logger.warning(
                "%s failed (%s); trying again in %.1f s", what, describe_error(exc), pause
            )
            time.sleep(pause)
            pause = min(pause * 2, 15.0)
    raise AssertionError("unreachable")


def describe_error(exc: BaseException) -> str:
    """The API server's message of a failed call, or what failed on the way to it."""
    if isinstance(exc, ApiException):
        return describe(exc)
    return f"{type(exc).__name__}: {exc}"


def status_of(exc: ApiException) -> int:
    return int(exc.status or 0)


def describe(exc: ApiException) -> str:
    """The API server's message of a failed call (a Status body), else the HTTP reason."""
    try:
        body = json.loads(exc.body or "{}")
    except ValueError:
        body = {}
    message = body.get("message") if isinstance(body, dict) else None
    return f"{exc.status} {message or exc.reason}"
