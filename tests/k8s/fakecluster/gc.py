"""The garbage collector (ownerReferences, foreground/orphan deletion), the namespace
controller (default ServiceAccount and root CA ConfigMap; emptying deleted namespaces) and the
PVC protection controller."""

from __future__ import annotations

from collections.abc import Hashable

from .admission import PVC_PROTECTION
from .controller import Controller
from .errors import ApiError
from .meta import Obj, dig
from .namespaces import ensure_defaults
from .resources import BY_PLURAL, RESOURCES, Resource
from .store import FOREGROUND, ORPHAN, Event, Store

_TERMINAL = ("Succeeded", "Failed")


class GarbageCollector(Controller):
    name = "garbage-collector"

    def __init__(self, store: Store, errors: list[str]) -> None:
        super().__init__(store, errors)

    def keys_for(self, event: Event) -> list[Hashable]:
        obj = event.obj
        meta = obj["metadata"]
        plural = event.resource.plural
        key = (plural, meta.get("namespace", ""), meta["name"])
        keys: list[Hashable] = []
        deleting = bool(meta.get("deletionTimestamp"))
        if event.type != "DELETED":
            finalizers = meta.get("finalizers") or []
            if deleting and (FOREGROUND in finalizers or ORPHAN in finalizers):
                keys.append(("owner", *key))
            if meta.get("ownerReferences"):
                keys.append(("dependent", *key))
            if plural == "namespaces":
                keys.append(("namespace", meta["name"]))
        else:
            for resource, dependent in self.store.dependents(meta["uid"]):
                dmeta = dependent["metadata"]
                keys.append(
                    ("dependent", resource.plural, dmeta.get("namespace", ""), dmeta["name"])
                )
        if event.type == "DELETED" or deleting:
            # Owners waiting in foreground deletion may be free to go now.
            for ref in meta.get("ownerReferences") or []:
                owner = self.store.by_uid(ref.get("uid", ""))
                if owner is not None:
                    ometa = owner["metadata"]
                    keys.append(
                        ("owner", _plural_of(owner), ometa.get("namespace", ""), ometa["name"])
                    )
            if meta.get("namespace"):
                keys.append(("namespace", meta["namespace"]))
        if plural == "persistentvolumeclaims" and deleting:
            keys.append(("pvc", meta["namespace"], meta["name"]))
        if plural == "pods" and (
            event.type == "DELETED" or dig(obj, "status", "phase") in _TERMINAL
        ):
            for volume in dig(obj, "spec", "volumes", default=[]):
                claim = dig(volume, "persistentVolumeClaim", "claimName")
                if claim:
                    keys.append(("pvc", meta["namespace"], claim))
        return keys

    def sync(self, key: Hashable) -> None:
        assert isinstance(key, tuple)
        if key[0] == "owner":
            self._sync_owner(BY_PLURAL[key[1]], key[2], key[3])
        elif key[0] == "dependent":
            self._sync_dependent(BY_PLURAL[key[1]], key[2], key[3])
        elif key[0] == "namespace":
            self._sync_namespace(key[1])
        elif key[0] == "pvc":
            self._sync_pvc(key[1], key[2])

    # ------------------------------------------------------------------ owners

    def _sync_owner(self, resource: Resource, namespace: str, name: str) -> None:
        owner = self.store.try_get(resource, namespace, name)
        if owner is None or not owner["metadata"].get("deletionTimestamp"):
            return
        uid = owner["metadata"]["uid"]
        finalizers = owner["metadata"].get("finalizers") or []
        dependents = self.store.dependents(uid)
        if ORPHAN in finalizers:
            for dep_resource, dependent in dependents:
                self._drop_refs(dep_resource, dependent, {uid})
            self._remove_finalizer(resource, namespace, name, ORPHAN)
            return
        if FOREGROUND not in finalizers:
            return
        blocking = 0
        for dep_resource, dependent in dependents:
            ref = next(r for r in dependent["metadata"]["ownerReferences"] if r.get("uid") == uid)
            if ref.get("blockOwnerDeletion"):
                blocking += 1
            if not dependent["metadata"].get("deletionTimestamp"):
                self.queue.add(
                    (
                        "dependent",
                        dep_resource.plural,
                        dependent["metadata"].get("namespace", ""),
                        dependent["metadata"]["name"],
                    )
                )
        if blocking == 0:
            self._remove_finalizer(resource, namespace, name, FOREGROUND)

    # ------------------------------------------------------------------ dependents

    def _sync_dependent(self, resource: Resource, namespace: str, name: str) -> None:
        obj = self.store.try_get(resource, namespace, name)
        if obj is None:
            return
        refs = obj["metadata"].get("ownerReferences") or []
        if not refs:
            return
        solid, waiting, absent = [], [], []
        for ref in refs:
            owner = self.store.by_uid(ref.get("uid", ""))
            if owner is None or owner["metadata"]["name"] != ref.get("name"):
                absent.append(ref["uid"])
            elif owner["metadata"].get("deletionTimestamp") and FOREGROUND in (
                owner["metadata"].get("finalizers") or []
            ):
                waiting.append(ref["uid"])
            else:
                solid.append(ref["uid"])
        if solid:
            if absent or waiting:
                self._drop_refs(resource, obj, set(absent) | set(waiting))
            return
        if obj["metadata"].get("deletionTimestamp"):
            return
        finalizers = obj["metadata"].get("finalizers") or []
        if waiting:
            policy = "Foreground"
        elif ORPHAN in finalizers:
            policy = "Orphan"
        elif FOREGROUND in finalizers:
            policy = "Foreground"
        else:
            policy = "Background"
        try:
            self.store.delete(resource, namespace, name, propagation=policy)
        except ApiError as error:
            if error.code != 404:
                raise

    def _drop_refs(self, resource: Resource, obj: Obj, uids: set[str]) -> None:
        def drop(current: Obj) -> None:
            refs = [
                r
                for r in current["metadata"].get("ownerReferences") or []
                if r.get("uid") not in uids
            ]
            if refs:
                current["metadata"]["ownerReferences"] = refs
            else:
                current["metadata"].pop("ownerReferences", None)

        meta = obj["metadata"]
        try:
            self.store.update(resource, meta.get("namespace", ""), meta["name"], drop)
        except ApiError as error:
            if error.code != 404:
                raise

    def _remove_finalizer(self, resource: Resource, namespace: str, name: str, doomed: str) -> None:
        def remove(current: Obj) -> None:
            finalizers = [f for f in current["metadata"].get("finalizers") or [] if f != doomed]
            if finalizers:
                current["metadata"]["finalizers"] = finalizers
            else:
                current["metadata"].pop("finalizers", None)

        try:
            self.store.update(resource, namespace, name, remove)
        except ApiError as error:
            if error.code != 404:
                raise

    # ------------------------------------------------------------------ namespaces

    def _sync_namespace(self, name: str) -> None:
        namespaces = BY_PLURAL["namespaces"]
        ns = self.store.try_get(namespaces, "", name)
        if ns is None:
            return
        if not ns["metadata"].get("deletionTimestamp"):
            ensure_defaults(self.store, name)
            return
        if dig(ns, "status", "phase") != "Terminating":

            def terminating(current: Obj) -> None:
                current.setdefault("status", {})["phase"] = "Terminating"

            self.store.update(namespaces, "", name, terminating)
        remaining = 0
        for resource in RESOURCES:
            if not resource.namespaced:
                continue
            items, _ = self.store.list(resource, name)
            for item in items:
                remaining += 1
                if not item["metadata"].get("deletionTimestamp"):
                    try:
                        self.store.delete(
                            resource, name, item["metadata"]["name"], propagation="Background"
                        )
                    except ApiError as error:
                        if error.code != 404:
                            raise
        if remaining == 0:

            def finalize(current: Obj) -> None:
                current.setdefault("spec", {})["finalizers"] = []

            self.store.update(namespaces, "", name, finalize)

    # ------------------------------------------------------------------ PVC protection

    def _sync_pvc(self, namespace: str, name: str) -> None:
        claims = BY_PLURAL["persistentvolumeclaims"]
        claim = self.store.try_get(claims, namespace, name)
        if claim is None or not claim["metadata"].get("deletionTimestamp"):
            return
        if PVC_PROTECTION not in (claim["metadata"].get("finalizers") or []):
            return
        pods, _ = self.store.list(BY_PLURAL["pods"], namespace)
        for pod in pods:
            if dig(pod, "status", "phase") in _TERMINAL:
                continue
            for volume in dig(pod, "spec", "volumes", default=[]):
                if dig(volume, "persistentVolumeClaim", "claimName") == name:
                    return  # still in use
        self._remove_finalizer(claims, namespace, name, PVC_PROTECTION)


def _plural_of(obj: Obj) -> str:
    for resource in RESOURCES:
        if resource.kind == obj.get("kind") and resource.api_version == obj.get("apiVersion"):
            return resource.plural
    raise KeyError(obj.get("kind"))
