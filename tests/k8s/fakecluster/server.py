"""The fake API server: routing, verbs, Status errors, watch and log streams."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import errors
from .admission import Admission
from .auth import ANONYMOUS, Attributes, Rbac, Tokens, User
from .discovery import discovery
from .errors import ApiError
from .logs import ContainerLog, LogBook, render
from .meta import Obj, dig, now, parse_timestamp
from .patching import apply_patch
from .requestlog import ApiRequest, RequestLog
from .resources import Resource, lookup
from .selectors import parse_field_selector, parse_label_selector
from .store import Store, Watcher
from .transport import Handler, Reply, TlsServer, peer_closed

_DEFAULT_WATCH_SECONDS = 1800
_POLL_SECONDS = 0.25


@dataclass
class Route:
    resource: Resource
    namespace: str  # "" for cluster-scoped resources and all-namespaces collections
    name: str
    subresource: str | None
    all_namespaces: bool


class ApiServer:
    """The request logic; `serve()` puts it on 127.0.0.1."""

    def __init__(
        self,
        store: Store,
        admission: Admission,
        logbook: LogBook,
        tokens: Tokens,
        requests: RequestLog,
        *,
        rbac: Rbac | None = None,
        bookmark_seconds: float = 1.0,
    ) -> None:
        self.store = store
        self.admission = admission
        self.logbook = logbook
        self.tokens = tokens
        self.requests = requests
        self.rbac = rbac
        self.bookmark_seconds = bookmark_seconds
        self.stopping = threading.Event()
        self.internal_errors: list[str] = []  # bugs of the fake itself, answered with 500
        self._servers: list[tuple[ThreadingHTTPServer, threading.Thread]] = []
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle

    def serve(self, tls: ssl.SSLContext | None = None) -> str:
        """Listen on a new port of 127.0.0.1 (HTTPS with `tls`); returns the base URL."""
        server = self

        class BoundHandler(Handler):
            api = server

        http: ThreadingHTTPServer = (
            TlsServer(("127.0.0.1", 0), BoundHandler, tls)
            if tls
            else ThreadingHTTPServer(("127.0.0.1", 0), BoundHandler)
        )
        http.daemon_threads = True
        thread = threading.Thread(
            target=http.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="fake-apiserver",
            daemon=True,
        )
        thread.start()
        self._servers.append((http, thread))
        scheme = "https" if tls else "http"
        return f"{scheme}://127.0.0.1:{http.server_address[1]}"

    def shutdown(self) -> None:
        self.stopping.set()
        self.store.close_watches()
        for http, _ in self._servers:
            http.shutdown()
            http.server_close()
        with self._connections_lock:
            for connection in list(self._connections):
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
        for _, thread in self._servers:
            thread.join(timeout=5)
        self._servers.clear()

    def track(self, connection: socket.socket, open_: bool) -> None:
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    # ------------------------------------------------------------------ dispatch

    def handle(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes,
        connection: socket.socket | None = None,
    ) -> Reply:
        split = urlsplit(target)
        path = split.path.rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        verb, route = "get", None
        raise_later: Exception | None = None
        user: User = ANONYMOUS
        try:
            found = self.tokens.user(headers.get("authorization"))
            if found is None:
                raise ApiError(401, "Unauthorized")
            user = found
            discovery_reply = discovery(path)
            if discovery_reply is not None:
                if method != "GET":
                    raise ApiError(405, f"the server does not allow this method on {path}")
                reply = Reply(200, discovery_reply)
            else:
                route = self._route(path)
                verb = _verb(method, route, query)
                self._authorize(user, verb, route)
                reply = self._serve_resource(verb, route, query, headers, body, user, connection)
        except ApiError as error:
            reply = Reply(error.code, error.status())
        except Exception as error:  # a bug in the fake: answer like the API server would
            reply = Reply(500, ApiError(500, f"fake API server error: {error!r}").status())
            raise_later = error
        self.requests.add(
            ApiRequest(
                verb=verb,
                method=method,
                path=path,
                query=query,
                resource=route.resource.plural if route else "",
                subresource=route.subresource if route else None,
                namespace=route.namespace if route else "",
                name=route.name if route else "",
                user=user.name,
                code=reply.code,
            )
        )
        if raise_later is not None:
            self.internal_errors.append(repr(raise_later))
        return reply

    def _authorize(self, user: User, verb: str, route: Route) -> None:
        if self.rbac is None:
            return
        attributes = Attributes(
            user,
            verb,
            route.resource.group,
            route.resource.plural,
            route.subresource,
            route.namespace,
            route.name,
        )
        if self.rbac.allows(attributes):
            return
        scope = (
            f' in the namespace "{route.namespace}"' if route.namespace else " at the cluster scope"
        )
        resource = route.resource.plural + (f"/{route.subresource}" if route.subresource else "")
        what = f'{resource} "{route.name}"' if route.name else resource
        raise ApiError(
            403,
            f'{what} is forbidden: User "{user.name}" cannot {verb} resource "{resource}" in API '
            f'group "{route.resource.group}"{scope}',
            details={
                "name": route.name,
                "group": route.resource.group,
                "kind": route.resource.plural,
            },
        )

    def _route(self, path: str) -> Route:
        parts = path.strip("/").split("/")
        if parts[:1] == ["api"] and len(parts) >= 3:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 4:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(
                404,
                "the server could not find the requested resource",
                details={
                    "causes": [
                        {"reason": "UnexpectedServerResponse", "message": "404 page not found"}
                    ]
                },
            )
        namespaced = lookup(group, version, rest[2]) if len(rest) >= 3 else None
        if rest[0] == "namespaces" and namespaced is not None and namespaced.namespaced:
            if len(rest) > 5:
                raise _no_resource(path)
            return Route(
                namespaced,
                rest[1],
                rest[3] if len(rest) > 3 else "",
                rest[4] if len(rest) > 4 else None,
                False,
            )
        resource = lookup(group, version, rest[0])
        if resource is None or len(rest) > 3:
            raise _no_resource(path)
        if resource.namespaced:
            if len(rest) > 1:
                raise _no_resource(path)
            return Route(resource, "", "", None, True)
        return Route(
            resource,
            "",
            rest[1] if len(rest) > 1 else "",
            rest[2] if len(rest) > 2 else None,
            False,
        )

    # ------------------------------------------------------------------ verbs

    def _serve_resource(
        self,
        verb: str,
        route: Route,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        user: User,
        connection: socket.socket | None,
    ) -> Reply:
        resource = route.resource
        sub = route.subresource
        allowed_subs = (("status",) if resource.has_status else ()) + resource.extra_subresources
        if sub is not None and sub not in allowed_subs:
            raise _no_resource(f"{resource.plural}/{sub}")
        if sub == "log":
            if verb != "get":
                raise ApiError(
                    405, "the server does not allow this method on the requested resource"
                )
            return self._log(route, query)
        dry_run = query.get("dryRun") == "All"
        if verb == "list":
            return Reply(200, self._list(route, query))
        if verb == "watch":
            return self._watch(route, query, connection)
        if verb == "get":
            obj = self.store.get(resource, route.namespace, route.name)
            return Reply(200, obj)
        if verb == "create":
            obj = self.admission.for_create(resource, _json(body), route.namespace)
            return Reply(201, self.store.create(resource, obj, dry_run=dry_run))
        if verb in ("update", "patch"):
            return Reply(200, self._update(verb, route, headers, body, dry_run))
        if verb == "delete":
            return self._delete(route, query, body, dry_run)
        if verb == "deletecollection":
            return self._delete_collection(route, query, body, dry_run)
        raise ApiError(405, f"verb {verb} is not supported")

    def _list(self, route: Route, query: dict[str, str]) -> Obj:
        resource = route.resource
        labels = parse_label_selector(query.get("labelSelector"))
        fields = parse_field_selector(query.get("fieldSelector"), resource.plural)
        namespace = None if route.all_namespaces or not resource.namespaced else route.namespace
        items, rv = self.store.list(resource, namespace)
        items = [
            obj
            for obj in items
            if labels.matches(dig(obj, "metadata", "labels", default={})) and fields.matches(obj)
        ]
        start = ""
        if query.get("continue"):
            try:
                token = json.loads(base64.urlsafe_b64decode(query["continue"].encode()))
                start, rv = token["start"], token["rv"]
            except (ValueError, KeyError, TypeError) as error:
                raise ApiError(
                    400,
                    "continue key is not valid: incorrect encoded start "
                    "resourceVersion (version meta.k8s.io/v1)",
                ) from error
            items = [o for o in items if _position(o) > start]
        meta: Obj = {"resourceVersion": str(rv)}
        limit = _int_param(query, "limit")
        if limit and limit > 0 and len(items) > limit:
            remaining = len(items) - limit
            items = items[:limit]
            token = {"rv": rv, "start": _position(items[-1])}
            meta["continue"] = base64.urlsafe_b64encode(json.dumps(token).encode()).decode()
            meta["remainingItemCount"] = remaining
        for item in items:
            item.pop("kind", None)
            item.pop("apiVersion", None)
        return {
            "kind": resource.list_kind,
            "apiVersion": resource.api_version,
            "metadata": meta,
            "items": items,
        }

    def _update(
        self, verb: str, route: Route, headers: dict[str, str], body: bytes, dry_run: bool
    ) -> Obj:
        resource = route.resource
        payload = _json(body)

        def change(current: Obj) -> Obj:
            if verb == "patch":
                incoming = apply_patch(headers.get("content-type", ""), current, payload)
            else:
                incoming = payload
            new = self.admission.for_update(resource, current, incoming, route.subresource)
            # An update, or a patch, that names a resourceVersion must match it.
            given = (
                dig(payload, "metadata", "resourceVersion") if isinstance(payload, dict) else None
            )
            if given and given != current["metadata"]["resourceVersion"]:
                raise errors.modified_conflict(resource.plural, route.name, resource.group)
            return new

        stored = self.store.update(resource, route.namespace, route.name, change, dry_run=dry_run)
        if stored is None:  # the update removed the last finalizer of an object being deleted
            return {
                "kind": resource.kind,
                "apiVersion": resource.api_version,
                "metadata": {"name": route.name, "namespace": route.namespace},
            }
        return stored

    def _delete_options(
        self, query: dict[str, str], body: bytes
    ) -> tuple[str | None, int | None, Obj]:
        options = _json(body) if body.strip() else {}
        if not isinstance(options, dict):
            raise ApiError(400, "DeleteOptions must be a JSON object")
        policy = query.get("propagationPolicy") or options.get("propagationPolicy")
        orphan = query.get("orphanDependents", options.get("orphanDependents"))
        if orphan is not None and policy is None:
            policy = "Orphan" if str(orphan).lower() == "true" else "Background"
        if policy not in (None, "Orphan", "Background", "Foreground"):
            raise errors.invalid_object(
                "DeleteOptions",
                "",
                [
                    errors.unsupported(
                        "propagationPolicy", policy, ["Foreground", "Background", "Orphan"]
                    )
                ],
            )
        grace = query.get("gracePeriodSeconds", options.get("gracePeriodSeconds"))
        grace_seconds = int(grace) if grace is not None else None
        if grace_seconds is not None and grace_seconds < 0:
            grace_seconds = 0
        return policy, grace_seconds, options.get("preconditions") or {}

    def _delete(self, route: Route, query: dict[str, str], body: bytes, dry_run: bool) -> Reply:
        policy, grace, preconditions = self._delete_options(query, body)
        resource = route.resource
        obj, gone = self.store.delete(
            resource,
            route.namespace,
            route.name,
            propagation=policy,
            grace_seconds=grace,
            preconditions=preconditions,
            dry_run=dry_run,
        )
        if gone and resource.plural != "pods":
            return Reply(
                200,
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": {
                        "name": route.name,
                        "group": resource.group,
                        "kind": resource.plural,
                        "uid": obj["metadata"]["uid"],
                    },
                },
            )
        return Reply(200, obj)

    def _delete_collection(
        self, route: Route, query: dict[str, str], body: bytes, dry_run: bool
    ) -> Reply:
        policy, grace, _ = self._delete_options(query, body)
        listed = self._list(route, query)
        for item in listed["items"]:
            try:
                self.store.delete(
                    route.resource,
                    item["metadata"].get("namespace", ""),
                    item["metadata"]["name"],
                    propagation=policy,
                    grace_seconds=grace,
                    dry_run=dry_run,
                )
            except ApiError as error:
                if error.code != 404:
                    raise
        return Reply(
            200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
        )

    # ------------------------------------------------------------------ watch

    def _watch(
        self, route: Route, query: dict[str, str], connection: socket.socket | None
    ) -> Reply:
        resource = route.resource
        labels = parse_label_selector(query.get("labelSelector"))
        fields = parse_field_selector(query.get("fieldSelector"), resource.plural)
        if route.name:  # GET .../pods/NAME?watch=true (deprecated form)
            fields = parse_field_selector(f"metadata.name={route.name}", resource.plural)
        namespace = None if route.all_namespaces or not resource.namespaced else route.namespace
        since_text = query.get("resourceVersion", "")
        initial_events = query.get("sendInitialEvents") == "true"
        bookmarks = query.get("allowWatchBookmarks") == "true"
        if since_text in ("", "0") or initial_events:
            since = None
        else:
            try:
                since = int(since_text)
            except ValueError as error:
                raise ApiError(
                    400, f"resourceVersion: Invalid value: {since_text!r}: invalid resource version"
                ) from error
        timeout = _int_param(query, "timeoutSeconds") or _DEFAULT_WATCH_SECONDS
        if initial_events and not bookmarks:
            raise errors.invalid_object(
                "ListOptions",
                "",
                [
                    errors.forbidden(
                        "allowWatchBookmarks", "sendInitialEvents requires allowWatchBookmarks=true"
                    )
                ],
            )
        watcher = self.store.watch(
            resource, namespace, since, labels, fields, initial_events_end=initial_events
        )

        def stream(write: Callable[[bytes], bool]) -> None:
            try:
                self._pump(watcher, write, timeout, bookmarks, connection)
            finally:
                self.store.stop_watch(watcher)

        return Reply(200, None, stream)

    def _pump(
        self,
        watcher: Watcher,
        write: Callable[[bytes], bool],
        timeout: int,
        bookmarks: bool,
        connection: socket.socket | None,
    ) -> None:
        def send(kind: str, obj: Obj) -> bool:
            return write(json.dumps({"type": kind, "object": obj}).encode() + b"\n")

        if watcher.expired:
            send("ERROR", ApiError(410, watcher.expired).status())
            return
        deadline = time.monotonic() + timeout
        next_bookmark = time.monotonic() + self.bookmark_seconds
        while not self.stopping.is_set() and time.monotonic() < deadline:
            item = watcher.next(min(_POLL_SECONDS, max(0.0, deadline - time.monotonic())))
            if item is not None:
                if not send(*item):
                    return
                continue
            if watcher.closed or peer_closed(connection):
                return
            if bookmarks and time.monotonic() >= next_bookmark:
                next_bookmark = time.monotonic() + self.bookmark_seconds
                # Queued behind pending events, so it never claims more than was sent.
                self.store.bookmark(watcher)

    # ------------------------------------------------------------------ logs

    def _log(self, route: Route, query: dict[str, str]) -> Reply:
        pod = self.store.get(route.resource, route.namespace, route.name)
        spec = pod.get("spec") or {}
        containers = [c["name"] for c in spec.get("containers") or []]
        init_containers = [c["name"] for c in spec.get("initContainers") or []]
        name = query.get("container")
        if not name:
            if len(containers) != 1:
                message = (
                    f"a container name must be specified for pod {route.name}, choose one "
                    f"of: [{' '.join(containers)}]"
                )
                if init_containers:
                    message += f" or one of the init containers: [{' '.join(init_containers)}]"
                raise ApiError(400, message)
            name = containers[0]
        if name not in containers + init_containers:
            raise ApiError(400, f"container {name} is not valid for pod {route.name}")
        if not dig(pod, "spec", "nodeName"):
            return Reply(200, b"")
        uid = pod["metadata"]["uid"]
        previous = query.get("previous") == "true"
        log = (self.logbook.previous if previous else self.logbook.current)(uid, name)
        if log is None:
            if previous:
                raise ApiError(
                    400, f'previous terminated container "{name}" in pod "{route.name}" not found'
                )
            raise ApiError(
                400,
                f'container "{name}" in pod "{route.name}" is waiting to start: '
                f"{_waiting_reason(pod, name)}",
            )
        tail = _int_param(query, "tailLines")
        limit = _int_param(query, "limitBytes")
        stamps = query.get("timestamps") == "true"
        since = None
        if query.get("sinceSeconds"):
            since = now() - timedelta(seconds=int(query["sinceSeconds"]))
        elif query.get("sinceTime"):
            since = parse_timestamp(query["sinceTime"])
        if query.get("follow") != "true":
            lines = log.snapshot()
            return Reply(
                200, render(lines, tail=tail, since=since, timestamps=stamps, limit_bytes=limit)
            )

        def stream(write: Callable[[bytes], bool]) -> None:
            self._follow(log, write, tail, since, stamps, limit)

        return Reply(200, b"", stream)

    def _follow(
        self,
        log: ContainerLog,
        write: Callable[[bytes], bool],
        tail: int | None,
        since: Any,
        stamps: bool,
        limit: int | None,
    ) -> None:
        lines, done = log.wait_for_more(0, 0)
        sent = len(lines)
        budget = limit
        chunk = render(lines, tail=tail, since=since, timestamps=stamps)
        while True:
            if chunk:
                if budget is not None:
                    chunk = chunk[:budget]
                    budget -= len(chunk)
                if not write(chunk):
                    return
            if done or self.stopping.is_set() or budget == 0:
                return
            lines, done = log.wait_for_more(sent, _POLL_SECONDS)
            sent += len(lines)
            chunk = render(lines, since=since, timestamps=stamps)


# ---------------------------------------------------------------------- helpers


def _verb(method: str, route: Route, query: dict[str, str]) -> str:
    collection = not route.name
    if method == "GET":
        if query.get("watch") in ("true", "1"):
            return "watch"
        return "list" if collection else "get"
    if method == "POST":
        if not collection:
            raise ApiError(405, "the server does not allow this method on the requested resource")
        return "create"
    if method == "PUT" and not collection:
        return "update"
    if method == "PATCH" and not collection:
        return "patch"
    if method == "DELETE":
        return "deletecollection" if collection else "delete"
    raise ApiError(405, "the server does not allow this method on the requested resource")


def _no_resource(path: str) -> ApiError:
    return ApiError(404, f"the server could not find the requested resource ({path})")


def _json(body: bytes) -> Any:
    if not body.strip():
        raise ApiError(400, "the request body is empty")
    try:
        return json.loads(body)
    except json.JSONDecodeError as error:
        raise ApiError(400, f"the request body is not valid JSON: {error}") from error


def _int_param(query: dict[str, str], name: str) -> int | None:
    text = query.get(name)
    if text in (None, ""):
        return None
    try:
        return int(text)
    except ValueError as error:
        raise ApiError(400, f"{name}: Invalid value: {text!r}: must be an integer") from error


def _position(obj: Obj) -> str:
    meta = obj["metadata"]
    return f"{meta.get('namespace', '')}/{meta['name']}"


def _waiting_reason(pod: Obj, container: str) -> str:
    for field in ("initContainerStatuses", "containerStatuses"):
        for status in dig(pod, "status", field, default=[]):
            if status.get("name") == container:
                reason = dig(status, "state", "waiting", "reason", default="ContainerCreating")
                if reason in ("ErrImagePull", "ImagePullBackOff"):
                    return "trying and failing to pull image"
                return str(reason)
    return "ContainerCreating"
