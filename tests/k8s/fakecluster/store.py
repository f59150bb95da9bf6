"""The API server's storage: objects, one resourceVersion sequence, event history and watchers.

Semantics follow the API server's generic registry: every write bumps the cluster-wide
resourceVersion; no-op updates write nothing; deletion honours finalizers (`foregroundDeletion`,
`orphan`, any other) and pods' graceful termination; watchers get ADDED/MODIFIED/DELETED with
selector transitions turned into ADDED/DELETED as the watch cache does.
Stored objects are never mutated in place: every write stores a new dict, readers get copies.
"""

from __future__ import annotations

import builtins
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from . import errors
from .errors import ApiError
from .meta import Obj, canonical, deep_copy, dig, new_uid, now, owner_uids, timestamp
from .resources import BY_PLURAL, Resource
from .selectors import FieldSelector, LabelSelector

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
_FIRST_RESOURCE_VERSION = 1000


@dataclass(frozen=True)
class Key:
    plural: str
    namespace: str
    name: str


def key_of(resource: Resource, obj: Obj) -> Key:
    namespace = dig(obj, "metadata", "namespace", default="") if resource.namespaced else ""
    return Key(resource.plural, namespace, dig(obj, "metadata", "name", default=""))


@dataclass(frozen=True)
class Event:
    type: str  # ADDED, MODIFIED, DELETED
    resource: Resource
    obj: Obj  # the stored state after the change (the last state for DELETED); never mutate
    old: Obj | None
    rv: int

    @property
    def key(self) -> Key:
        return key_of(self.resource, self.obj)


@dataclass(eq=False)
class Watcher:
    """One watch: events already filtered for its namespace and selectors, in order."""

    resource: Resource
    namespace: str | None
    labels: LabelSelector
    fields: FieldSelector
    _pending: deque[tuple[str, Obj]] = field(default_factory=deque)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _closed: bool = False
    expired: str | None = None  # set when the watch starts too far back (410 Gone)

    def matches(self, obj: Obj | None) -> bool:
        if obj is None:
            return False
        if self.namespace is not None and dig(obj, "metadata", "namespace") != self.namespace:
            return False
        return self.labels.matches(dig(obj, "metadata", "labels", default={})) and (
            self.fields.matches(obj)
        )

    def offer(self, event: Event) -> None:
        if event.resource.plural != self.resource.plural:
            return
        now_matches = self.matches(event.obj)
        was_matching = self.matches(event.old)
        if event.type == "DELETED":
            kind = "DELETED" if now_matches else None
        elif event.type == "ADDED":
            kind = "ADDED" if now_matches else None
        elif now_matches:
            kind = "MODIFIED" if was_matching else "ADDED"
        elif was_matching:
            # The object left the selection: watchers see it deleted, with the old content
            # and the new resourceVersion.
            assert event.old is not None
            old = dict(event.old)
            old["metadata"] = {**event.old["metadata"], "resourceVersion": str(event.rv)}
            self._push("DELETED", old)
            return
        else:
            kind = None
        if kind:
            self._push(kind, event.obj)

    def _push(self, kind: str, obj: Obj) -> None:
        with self._cond:
            self._pending.append((kind, obj))
            self._cond.notify_all()

    def next(self, timeout: float) -> tuple[str, Obj] | None:
        """The next (type, object) or None after `timeout` seconds or once closed."""
        with self._cond:
            if not self._pending and not self._closed:
                self._cond.wait(timeout)
            if self._pending:
                kind, obj = self._pending.popleft()
                return kind, deep_copy(obj)
            return None

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed


Mutation = Callable[[Obj], Any]


class Store:
    def __init__(self, history: int = 10_000) -> None:
        self._lock = threading.RLock()
        self._objects: dict[Key, Obj] = {}
        self._by_uid: dict[str, Key] = {}
        self._dependents: dict[str, set[Key]] = defaultdict(set)
        self._rv = _FIRST_RESOURCE_VERSION
        self._history: deque[Event] = deque()
        self._history_limit = history
        self._compacted = _FIRST_RESOURCE_VERSION
        self._watchers: set[Watcher] = set()
        self._listeners: list[Callable[[Event], None]] = []

    # ----------------------------------------------------------------- reading

    @property
    def resource_version(self) -> int:
        with self._lock:
            return self._rv

    def get(self, resource: Resource, namespace: str, name: str) -> Obj:
        found = self.try_get(resource, namespace, name)
        if found is None:
            raise errors.not_found(resource.plural, name, resource.group)
        return found

    def try_get(self, resource: Resource, namespace: str, name: str) -> Obj | None:
        with self._lock:
            obj = self._objects.get(Key(resource.plural, namespace, name))
            return deep_copy(obj) if obj is not None else None

    def by_uid(self, uid: str) -> Obj | None:
        with self._lock:
            key = self._by_uid.get(uid)
            return deep_copy(self._objects[key]) if key else None

    def list(
        self, resource: Resource, namespace: str | None = None
    ) -> tuple[builtins.list[Obj], int]:
        """Copies of the objects of one resource (one namespace or all), sorted, and the RV."""
        with self._lock:
            items = [
                deep_copy(obj)
                for key, obj in sorted(self._objects.items(), key=lambda kv: _sort_key(kv[0]))
                if key.plural == resource.plural
                and (namespace is None or key.namespace == namespace)
            ]
            return items, self._rv

    def dependents(self, owner_uid: str) -> builtins.list[tuple[Resource, Obj]]:
        with self._lock:
            found = []
            for key in sorted(self._dependents.get(owner_uid, ()), key=_sort_key):
                obj = self._objects.get(key)
                if obj is not None:
                    found.append((BY_PLURAL[key.plural], deep_copy(obj)))
            return found

    def count(self) -> int:
        with self._lock:
            return len(self._objects)

    # ----------------------------------------------------------------- writing

    def create(self, resource: Resource, obj: Obj, *, dry_run: bool = False) -> Obj:
        """Store a new, already defaulted and validated object."""
        with self._lock:
            key = key_of(resource, obj)
            if key in self._objects:
                raise errors.already_exists(resource.plural, key.name, resource.group)
            if resource.namespaced:
                self._check_namespace(key.namespace)
            meta = obj["metadata"]
            meta.setdefault("uid", new_uid())
            meta["creationTimestamp"] = timestamp()
            if "spec" in obj:
                meta["generation"] = 1
            for dropped in ("deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
                meta.pop(dropped, None)
            obj["apiVersion"] = resource.api_version
            obj["kind"] = resource.kind
            if dry_run:
                meta["resourceVersion"] = ""
                return deep_copy(obj)
            self._rv += 1
            meta["resourceVersion"] = str(self._rv)
            stored = deep_copy(obj)
            self._objects[key] = stored
            self._by_uid[meta["uid"]] = key
            self._index_owners(key, None, stored)
            self._emit("ADDED", resource, stored, None)
            return deep_copy(stored)

    def update(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        change: Mutation,
        *,
        expected_rv: str | None = None,
        dry_run: bool = False,
    ) -> Obj | None:
        """Apply `change` to a copy of the current object and store the result.

        `change` edits the copy in place (or returns a replacement dict); it may raise
        ApiError. Server-managed metadata cannot change. Returns the stored state, or None when
        the update removed the object (its last finalizer went while it was being deleted)."""
        with self._lock:
            key = Key(resource.plural, namespace, name)
            current = self._objects.get(key)
            if current is None:
                raise errors.not_found(resource.plural, name, resource.group)
            if expected_rv and expected_rv != current["metadata"].get("resourceVersion"):
                raise errors.modified_conflict(resource.plural, name, resource.group)
            draft = deep_copy(current)
            replaced = change(draft)
            new = replaced if isinstance(replaced, dict) else draft
            self._keep_server_fields(resource, current, new)
            if canonical(new) == canonical(current):
                return deep_copy(current)
            if dry_run:
                return new
            return self._write(resource, key, current, new)

    def delete(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        *,
        propagation: str | None = None,
        grace_seconds: int | None = None,
        preconditions: Obj | None = None,
        dry_run: bool = False,
    ) -> tuple[Obj, bool]:
        """Delete as the API server does; returns (last state, whether it is gone now)."""
        with self._lock:
            key = Key(resource.plural, namespace, name)
            current = self._objects.get(key)
            if current is None:
                raise errors.not_found(resource.plural, name, resource.group)
            self._check_preconditions(resource, current, preconditions or {})
            new = deep_copy(current)
            meta = new["metadata"]
            finalizers = list(meta.get("finalizers") or [])
            policy = propagation or _policy_from_finalizers(finalizers)
            if policy is None and meta.get("deletionTimestamp") is None:
                policy = resource.default_propagation
            if policy is not None:
                finalizers = _finalizers_for(policy, finalizers)
            graceful = resource.plural == "pods" and _needs_graceful_termination(current)
            if graceful:
                grace = grace_seconds
                if grace is None:
                    grace = int(dig(current, "spec", "terminationGracePeriodSeconds", default=30))
                previous = meta.get("deletionGracePeriodSeconds")
                if previous is not None and grace > previous:
                    grace = previous
                graceful = grace > 0
            else:
                grace = 0
            if resource.plural == "namespaces" and dig(current, "spec", "finalizers"):
                graceful = True  # the namespace controller empties it first
            if meta.get("finalizers") or finalizers:
                meta["finalizers"] = finalizers
            if not finalizers:
                meta.pop("finalizers", None)
            if not finalizers and not graceful:
                if dry_run:
                    return new, True
                self._remove(resource, key, current, new)
                return deep_copy(new), True
            if meta.get("deletionTimestamp") is None:
                meta["deletionTimestamp"] = timestamp(now() + timedelta(seconds=grace))
            meta["deletionGracePeriodSeconds"] = grace
            if dry_run:
                return new, False
            stored = self._write(resource, key, current, new, deleting=True)
            return (deep_copy(stored), False) if stored is not None else (deep_copy(new), True)

    def remove_now(self, resource: Resource, namespace: str, name: str) -> None:
        """What the kubelet does once a pod's containers are gone: delete with grace 0."""
        try:
            self.delete(resource, namespace, name, grace_seconds=0)
        except ApiError as error:
            if error.code != 404:
                raise

    # ----------------------------------------------------------------- watching

    def subscribe(self, listener: Callable[[Event], None]) -> None:
        """Call `listener` with every event, under the store lock: it must only enqueue."""
        with self._lock:
            self._listeners.append(listener)

    def watch(
        self,
        resource: Resource,
        namespace: str | None,
        since: int | None,
        labels: LabelSelector,
        fields: FieldSelector,
        *,
        initial_events_end: bool = False,
    ) -> Watcher:
        """A watcher from `since` (None: synthetic ADDED for everything that exists first, then,
        with `initial_events_end`, the bookmark that says so)."""
        watcher = Watcher(resource, namespace, labels, fields)
        with self._lock:
            if since is None:
                for key, obj in sorted(self._objects.items(), key=lambda kv: _sort_key(kv[0])):
                    if key.plural == resource.plural and watcher.matches(obj):
                        watcher._push("ADDED", obj)
                if initial_events_end:
                    self._push_bookmark(watcher, {"k8s.io/initial-events-end": "true"})
            elif since < self._compacted:
                watcher.expired = f"too old resource version: {since} ({self._compacted})"
                return watcher
            else:
                for event in self._history:
                    if event.rv > since:
                        watcher.offer(event)
            self._watchers.add(watcher)
        return watcher

    def bookmark(self, watcher: Watcher) -> None:
        """Queue a BOOKMARK with the current resourceVersion behind the events already queued."""
        with self._lock:
            self._push_bookmark(watcher, None)

    def _push_bookmark(self, watcher: Watcher, annotations: dict[str, str] | None) -> None:
        meta: Obj = {"resourceVersion": str(self._rv)}
        if annotations:
            meta["annotations"] = annotations
        watcher._push(
            "BOOKMARK",
            {
                "kind": watcher.resource.kind,
                "apiVersion": watcher.resource.api_version,
                "metadata": meta,
            },
        )

    def stop_watch(self, watcher: Watcher) -> None:
        with self._lock:
            self._watchers.discard(watcher)
        watcher.close()

    def close_watches(self) -> None:
        with self._lock:
            watchers = list(self._watchers)
            self._watchers.clear()
        for watcher in watchers:
            watcher.close()

    def compact(self) -> int:
        """Forget the event history, as etcd compaction does; older watches then get 410."""
        with self._lock:
            self._history.clear()
            self._compacted = self._rv
            return self._rv

    # ----------------------------------------------------------------- internals

    def _check_namespace(self, namespace: str) -> None:
        ns = self._objects.get(Key("namespaces", "", namespace))
        if ns is None:
            raise errors.not_found("namespaces", namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise ApiError(
                403,
                f"unable to create new content in namespace {namespace} because it is being "
                "terminated",
                details={"name": namespace, "kind": "namespaces"},
            )

    def _check_preconditions(self, resource: Resource, current: Obj, pre: Obj) -> None:
        meta = current["metadata"]
        name = meta["name"]
        if pre.get("uid") and pre["uid"] != meta["uid"]:
            raise errors.conflict(
                resource.plural,
                name,
                f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: "
                f"{meta['uid']}",
                resource.group,
            )
        if pre.get("resourceVersion") and pre["resourceVersion"] != meta["resourceVersion"]:
            raise errors.conflict(
                resource.plural,
                name,
                "Precondition failed: ResourceVersion in precondition: "
                f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                f"{meta['resourceVersion']}",
                resource.group,
            )

    def _keep_server_fields(self, resource: Resource, current: Obj, new: Obj) -> None:
        old_meta = current["metadata"]
        meta = new.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise ApiError(400, "metadata must be an object")
        for managed in (
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "resourceVersion",
        ):
            if managed in old_meta:
                meta[managed] = old_meta[managed]
            else:
                meta.pop(managed, None)
        new["apiVersion"] = resource.api_version
        new["kind"] = resource.kind
        if old_meta.get("deletionTimestamp"):
            added = set(meta.get("finalizers") or []) - set(old_meta.get("finalizers") or [])
            if added:
                raise errors.invalid_object(
                    resource.kind,
                    old_meta["name"],
                    [
                        errors.forbidden(
                            "metadata.finalizers",
                            "no new finalizers can be added if the object is being deleted, "
                            f"found new finalizers {sorted(added)}",
                        )
                    ],
                    resource.group,
                )
        if "generation" in old_meta and canonical(current.get("spec")) != canonical(
            new.get("spec")
        ):
            meta["generation"] = old_meta["generation"] + 1

    def _write(
        self, resource: Resource, key: Key, current: Obj, new: Obj, *, deleting: bool = False
    ) -> Obj | None:
        meta = new["metadata"]
        if (
            not deleting
            and meta.get("deletionTimestamp")
            and not meta.get("finalizers")
            and not _awaiting_controller(resource, new)
        ):
            self._remove(resource, key, current, new)
            return None
        self._rv += 1
        meta["resourceVersion"] = str(self._rv)
        stored = deep_copy(new)
        self._objects[key] = stored
        self._index_owners(key, current, stored)
        self._emit("MODIFIED", resource, stored, current)
        return deep_copy(stored)

    def _remove(self, resource: Resource, key: Key, current: Obj, last: Obj) -> None:
        self._rv += 1
        stored = deep_copy(last)
        stored["metadata"]["resourceVersion"] = str(self._rv)
        del self._objects[key]
        self._by_uid.pop(current["metadata"]["uid"], None)
        self._index_owners(key, current, None)
        self._emit("DELETED", resource, stored, current)

    def _index_owners(self, key: Key, old: Obj | None, new: Obj | None) -> None:
        for uid in owner_uids(old) if old else []:
            self._dependents[uid].discard(key)
            if not self._dependents[uid]:
                del self._dependents[uid]
        for uid in owner_uids(new) if new else []:
            self._dependents[uid].add(key)

    def _emit(self, kind: str, resource: Resource, obj: Obj, old: Obj | None) -> None:
        event = Event(kind, resource, obj, old, self._rv)
        self._history.append(event)
        while len(self._history) > self._history_limit:
            self._compacted = self._history.popleft().rv
        for watcher in list(self._watchers):
            if watcher.closed:
                self._watchers.discard(watcher)
            else:
                watcher.offer(event)
        for listener in self._listeners:
            listener(event)


def _sort_key(key: Key) -> tuple[str, str]:
    return (key.namespace, key.name)


def _policy_from_finalizers(finalizers: Iterable[str]) -> str | None:
    if ORPHAN in finalizers:
        return "Orphan"
    if FOREGROUND in finalizers:
        return "Foreground"
    return None


def _finalizers_for(policy: str, finalizers: list[str]) -> list[str]:
    kept = [f for f in finalizers if f not in (ORPHAN, FOREGROUND)]
    if policy == "Foreground":
        kept.append(FOREGROUND)
    elif policy == "Orphan":
        kept.append(ORPHAN)
    return kept


def _needs_graceful_termination(pod: Obj) -> bool:
    """Pods on a node that may still run containers wait for the kubelet to confirm."""
    if not dig(pod, "spec", "nodeName"):
        return False
    return dig(pod, "status", "phase") not in ("Succeeded", "Failed")


def _awaiting_controller(resource: Resource, obj: Obj) -> bool:
    """A pod whose kubelet has not confirmed termination; a namespace not yet emptied."""
    if resource.plural == "namespaces":
        return bool(dig(obj, "spec", "finalizers"))
    return resource.plural == "pods" and bool(
        dig(obj, "metadata", "deletionGracePeriodSeconds", default=0)
    )
