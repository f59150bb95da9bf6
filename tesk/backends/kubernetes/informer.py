"""List + watch of one kind of object by label selector, in a thread, with a local cache.

The first list (and every relist after an expired watch or an error) reports each object as
ADDED and each cached object that is no longer there as DELETED, so a handler sees every change
even across a restart of the watch. The handler runs on the informer's thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from kubernetes.client.exceptions import ApiException

from tesk.backends.kubernetes.client import Kube, describe, new_watch, status_of

logger = logging.getLogger(__name__)

Obj = dict[str, Any]
Handler = Callable[[str, Obj], None]

PAGE_SIZE = 500
WATCH_SECONDS = 300
_READ_SLACK_S = 15
_ERROR_PAUSES_S = (0.5, 1.0, 2.0, 5.0, 10.0)


class Informer:
    def __init__(
        self,
        kube: Kube,
        list_call: Callable[..., Any],
        namespace: str,
        selector: str,
        handler: Handler,
        *,
        name: str,
        watch_seconds: int = WATCH_SECONDS,
    ) -> None:
        self._kube = kube
        self._list = list_call
        self._namespace = namespace
        self._selector = selector
        self._handler = handler
        self._name = name
        self._watch_seconds = watch_seconds
        self._cache: dict[str, Obj] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._synced = threading.Event()
        self._watch: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"tesk-{self._name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after the current event (a daemon thread: a watch blocked on a quiet stream
        does not hold up the process)."""
        self._stopping.set()
        current = self._watch
        if current is not None:
            current.stop()
        if self._thread is not None:
            self._thread.join(timeout)

    def wait_synced(self, timeout: float) -> bool:
        return self._synced.wait(timeout)

    def objects(self) -> list[Obj]:
        with self._lock:
            return list(self._cache.values())

    def _run(self) -> None:
        failures = 0
        version = ""
        while not self._stopping.is_set():
            try:
                if not version:
                    version = self._relist()
                    self._synced.set()
                version = self._follow(version)
                failures = 0
            except ApiException as exc:
                if self._stopping.is_set():
                    return
                if status_of(exc) == 410:
                    version = ""
                    continue
                failures += 1
                logger.warning("%s: %s; listing again", self._name, describe(exc))
                version = ""
                self._pause(failures)
            except Exception:
                if self._stopping.is_set():
                    return
                failures += 1
                logger.exception("%s: watch failed; listing again", self._name)
                version = ""
                self._pause(failures)

    def _pause(self, failures: int) -> None:
        self._stopping.wait(_ERROR_PAUSES_S[min(failures, len(_ERROR_PAUSES_S)) - 1])

    def _relist(self) -> str:
        seen: dict[str, Obj] = {}
        token: str | None = None
        version = ""
        while True:
            kwargs: dict[str, Any] = {"label_selector": self._selector, "limit": PAGE_SIZE}
            if token:
                kwargs["_continue"] = token
            page = self._kube.to_dict(self._list(self._namespace, **kwargs))
            meta = page.get("metadata") or {}
            version = str(meta.get("resourceVersion") or version)
            for item in page.get("items") or []:
                seen[item["metadata"]["name"]] = item
            token = meta.get("continue")
            if not token:
                break
        with self._lock:
            gone = [obj for name, obj in self._cache.items() if name not in seen]
            self._cache = dict(seen)
        for obj in gone:
            self._deliver("DELETED", obj)
        for obj in seen.values():
            self._deliver("ADDED", obj)
        return version

    def _follow(self, version: str) -> str:
        stream = new_watch()
        self._watch = stream
        try:
            for event in stream.stream(
                self._list,
                self._namespace,
                label_selector=self._selector,
                resource_version=version,
                allow_watch_bookmarks=True,
                timeout_seconds=self._watch_seconds,
                _request_timeout=self._watch_seconds + _READ_SLACK_S,
            ):
                if self._stopping.is_set():
                    break
                kind = str(event.get("type"))
                obj = event.get("raw_object")
                if not isinstance(obj, dict):
                    continue
                version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                if kind not in ("ADDED", "MODIFIED", "DELETED"):
                    continue
                name = obj["metadata"]["name"]
                with self._lock:
                    if kind == "DELETED":
                        self._cache.pop(name, None)
                    else:
                        self._cache[name] = obj
                self._deliver(kind, obj)
        finally:
            stream.stop()
            self._watch = None
        return version

    def _deliver(self, kind: str, obj: Obj) -> None:
        try:
            self._handler(kind, obj)
        except Exception:
            logger.exception(
                "%s: handling %s of %s failed", self._name, kind, obj["metadata"].get("name")
            )
