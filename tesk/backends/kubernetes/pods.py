"""Running one pod to its end from the taskmaster: create it, follow it, read its log.

Following costs one list and one watch per pod (more only when a watch times out or expires),
never a poll per second, and never looks at any other pod: the watch selects the pod by name.
A pod still pending after the timeout is deleted and reported with the reason the scheduler or
kubelet gave.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes.client.exceptions import ApiException

from tesk.backends.kubernetes.client import (
    CALL_ERRORS,
    Kube,
    describe_error,
    is_transient,
    new_watch,
    status_of,
)
from tesk.backends.kubernetes.status import Phase, PodOutcome, pod_outcome

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

WATCH_SECONDS = 300  # longest single watch request; a new one follows
_READ_SLACK_S = 15  # client-side read timeout beyond the server's watch timeout


_WAITING = (Phase.PENDING, Phase.RUNNING)


class PodStartError(Exception):
    """The pod could not be created; the message is the API server's."""


@dataclass(frozen=True)
class PodRun:
    outcome: PodOutcome
    pod: Obj | None  # the last state seen (None if never seen after creation)


class PodRunner:
    def __init__(
        self,
        kube: Kube,
        namespace: str,
        pending_timeout_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._kube = kube
        self._namespace = namespace
        self._pending_timeout = pending_timeout_s
        self._clock = clock
        self._lock = threading.Lock()
        self._current: str | None = None
        self._cancelled = False

    def run(self, manifest: Obj, container: str) -> PodRun:
        """Create the pod and wait until its container has ended (or it is lost or stuck)."""
        name = manifest["metadata"]["name"]
        with self._lock:
            if self._cancelled:
                return PodRun(PodOutcome(Phase.FAILED, reason="cancelled"), None)
            self._current = name
        try:
            try:
                created = self._kube.create("pods", self._namespace, manifest)
            except CALL_ERRORS as exc:
                why = describe_error(exc)
                raise PodStartError(f"pod {name} could not be created: {why}") from None
            if created is None:
                # Already there: created by an earlier taskmaster of this task (this one replaces
                # a disrupted one), or by a create whose answer was lost. Follow it.
                logger.info("pod %s exists already: following it", name)
                created = manifest
            return self._follow(name, container, created)
        finally:
            with self._lock:
                self._current = None

    def cancel(self) -> None:
        """Delete the pod being run now, and refuse to start more (from any thread)."""
        with self._lock:
            self._cancelled = True
            name = self._current
        if name is not None:
            self.delete(name)

    def delete(self, name: str) -> None:
        try:
            self._kube.delete("pods", self._namespace, name)
        except CALL_ERRORS as exc:
            logger.warning("deleting pod %s failed: %s", name, describe_error(exc))

    def exists(self, name: str) -> bool:
        pod, _version = self._list(name)
        return pod is not None and not (pod.get("metadata") or {}).get("deletionTimestamp")

    def delete_all(self, label_selector: str) -> None:
        """Delete every pod the selector matches (finished pods go at once)."""
        try:
            found = self._kube.list("pods", self._namespace, label_selector=label_selector)
        except Exception as exc:  # best effort: the claim then waits for the Job's TTL
            logger.warning("listing pods (%s) failed: %s", label_selector, exc)
            return
        for pod in found.get("items") or []:
            self.delete(pod["metadata"]["name"])

    def log(self, name: str, container: str) -> str:
        return self._kube.pod_log(self._namespace, name, container)

    def _follow(self, name: str, container: str, created: Obj) -> PodRun:
        """List the pod (for a resourceVersion to watch from), then watch it until it ends.

        An expired watch (410) starts over with a list, as informers do.
        """
        deadline = self._clock() + self._pending_timeout
        last: Obj = created
        version = ""
        while True:
            if not version:
                current, version = self._list(name)
                if current is None:
                    return PodRun(_gone(last, container), last)
                last = current
            outcome = pod_outcome(last, container)
            if outcome.phase not in _WAITING:
                return PodRun(outcome, last)
            now = self._clock()
            if outcome.phase is Phase.PENDING and now >= deadline:
                self.delete(name)
                return PodRun(
                    PodOutcome(
                        Phase.FAILED,
                        reason=(
                            f"pod {name} was still pending after {self._pending_timeout:g} s "
                            f"(kubernetes.pending_timeout_s): {outcome.reason}"
                        ),
                    ),
                    last,
                )
            wait = WATCH_SECONDS
            if outcome.phase is Phase.PENDING:
                wait = max(1, min(WATCH_SECONDS, math.ceil(deadline - now)))
            try:
                seen = self._watch(name, container, version, wait)
            except Exception as exc:
                # 410: the watch's resourceVersion expired. Anything transient (the API server
                # restarting, a cut connection, a read timeout, a watch ERROR event): list again
                # and watch from there, as informers do.
                expired = isinstance(exc, ApiException) and status_of(exc) == 410
                if not expired and not is_transient(exc):
                    raise
                if not expired:
                    logger.warning("following pod %s: %s; listing it again", name, exc)
                    time.sleep(1)
                version = ""
                continue
            if seen is not None:
                kind, last = seen
                version = str(last["metadata"].get("resourceVersion") or version)
                if kind == "DELETED":
                    return PodRun(_gone(last, container), last)

    def _watch(
        self, name: str, container: str, version: str, seconds: int
    ) -> tuple[str, Obj] | None:
        """The first event that deletes the pod or ends its container; else the last event seen
        when the watch times out (None: no event). One stream follows the pod from pending
        through running, so a pod usually costs one watch."""
        stream = new_watch()
        kwargs: dict[str, Any] = {
            "field_selector": f"metadata.name={name}",
            "timeout_seconds": seconds,
            "_request_timeout": seconds + _READ_SLACK_S,
        }
        if version:
            kwargs["resource_version"] = version
        latest: tuple[str, Obj] | None = None
        try:
            for event in stream.stream(
                self._kube.core.list_namespaced_pod, self._namespace, **kwargs
            ):
                kind = str(event.get("type"))
                obj = event.get("raw_object")
                if kind not in ("ADDED", "MODIFIED", "DELETED") or not isinstance(obj, dict):
                    continue
                latest = (kind, obj)
                if kind == "DELETED" or pod_outcome(obj, container).phase not in _WAITING:
                    return latest
        finally:
            stream.stop()
        return latest

    def _list(self, name: str) -> tuple[Obj | None, str]:
        found = self._kube.list(
            "pods", self._namespace, field_selector=f"metadata.name={name}", attempts=30
        )
        version = str((found.get("metadata") or {}).get("resourceVersion") or "")
        items = found.get("items") or []
        return (items[0] if items else None), version


def _gone(last: Obj, container: str) -> PodOutcome:
    outcome = pod_outcome(last, container)
    if outcome.phase not in (Phase.PENDING, Phase.RUNNING):
        return outcome
    name = last.get("metadata", {}).get("name", "?")
    return PodOutcome(Phase.FAILED, reason=f"pod {name} was deleted before it finished")
