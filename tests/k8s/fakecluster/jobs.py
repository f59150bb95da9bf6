"""The Job controller (batch/v1, NonIndexed) and the TTL-after-finished controller.

Follows Kubernetes >= 1.31: a failing or succeeding Job first gets FailureTarget or
SuccessCriteriaMet, its remaining pods are terminated, and only then Failed or Complete is added.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from datetime import timedelta

from . import events
from .admission import Admission
from .controller import Controller
from .errors import ApiError
from .meta import Obj, dig, now, parse_timestamp, set_condition, timestamp
from .resources import BY_PLURAL
from .store import Event, Store

JOBS = BY_PLURAL["jobs"]
PODS = BY_PLURAL["pods"]
_COMPONENT = "job-controller"
_TTL_COMPONENT = "ttl-after-finished-controller"


class JobController(Controller):
    name = "job-controller"

    def __init__(
        self, store: Store, admission: Admission, errors: list[str], *, retry_backoff: float
    ) -> None:
        super().__init__(store, errors)
        self._admission = admission
        self._retry_backoff = retry_backoff
        self._lock = threading.Lock()
        self._counted: dict[str, set[str]] = {}  # job uid -> pod uids already counted
        self._seen_active: dict[str, set[str]] = {}  # job uid -> pod uids seen running
        self._next_create: dict[str, float] = {}  # job uid -> earliest time for a new pod
        self._create_failures: dict[str, int] = {}  # job uid -> pod creations refused in a row

    def keys_for(self, event: Event) -> list[Hashable]:
        meta = event.obj["metadata"]
        if event.resource.plural == "jobs":
            return [(meta["namespace"], meta["name"])]
        if event.resource.plural == "pods":
            for ref in meta.get("ownerReferences") or []:
                if ref.get("controller") and ref.get("kind") == "Job":
                    return [(meta["namespace"], ref.get("name"))]
        return []

    def sync(self, key: Hashable) -> None:
        assert isinstance(key, tuple)
        namespace, name = key
        job = self.store.try_get(JOBS, namespace, name)
        if job is None or job["metadata"].get("deletionTimestamp"):
            return
        uid = job["metadata"]["uid"]
        if _finished(job):
            self._expire(job)
            return
        pods = [
            p
            for r, p in self.store.dependents(uid)
            if r.plural == "pods"
            and any(
                ref.get("uid") == uid and ref.get("controller")
                for ref in p["metadata"].get("ownerReferences") or []
            )
        ]
        succeeded, failed = self._count(uid, pods)
        active = [
            p
            for p in pods
            if _phase(p) not in ("Succeeded", "Failed")
            and not p["metadata"].get("deletionTimestamp")
        ]
        terminating = [
            p
            for p in pods
            if _phase(p) not in ("Succeeded", "Failed") and p["metadata"].get("deletionTimestamp")
        ]
        spec = job["spec"]
        status = job.get("status") or {}
        restarts = sum(
            int(cs.get("restartCount", 0))
            for p in active
            for cs in dig(p, "status", "containerStatuses", default=[])
        )
        start = status.get("startTime") or timestamp()
        target = _condition(job, "FailureTarget") or _condition(job, "SuccessCriteriaMet")
        new_target: tuple[str, str, str] | None = None
        if target is None:
            deadline = spec.get("activeDeadlineSeconds")
            if failed + restarts > int(spec.get("backoffLimit", 6)):
                new_target = (
                    "FailureTarget",
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                )
            elif deadline and now() >= parse_timestamp(start) + timedelta(seconds=deadline):
                new_target = (
                    "FailureTarget",
                    "DeadlineExceeded",
                    "Job was active longer than specified deadline",
                )
            elif succeeded >= int(spec.get("completions", 1)):
                new_target = (
                    "SuccessCriteriaMet",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                )
            elif deadline:
                remaining = parse_timestamp(start) + timedelta(seconds=deadline) - now()
                self.queue.add_after(key, remaining.total_seconds() + 0.05)
        ending = target is not None or new_target is not None
        if ending:
            # Whatever decided the Job's fate, its remaining pods are terminated.
            for pod in active:
                self._delete_pod(pod)
            terminating += active
            active = []
        done = ending and not terminating

        def write(current: Obj) -> None:
            st = current.setdefault("status", {})
            st["startTime"] = st.get("startTime") or start
            st["active"] = len(active)
            st["ready"] = sum(1 for p in active if _ready(p))
            st["succeeded"] = succeeded
            st["failed"] = failed
            st["terminating"] = len(terminating)
            st["uncountedTerminatedPods"] = {}
            for field in ("active", "succeeded", "failed"):
                if not st[field]:
                    del st[field]
            conditions = st.setdefault("conditions", [])
            if new_target:
                set_condition(
                    conditions,
                    new_target[0],
                    "True",
                    reason=new_target[1],
                    message=new_target[2],
                    probe_time=True,
                )
            chosen = new_target or (
                (target["type"], target.get("reason", ""), target.get("message", ""))
                if target
                else None
            )
            if done and chosen:
                final = "Failed" if chosen[0] == "FailureTarget" else "Complete"
                set_condition(
                    conditions, final, "True", reason=chosen[1], message=chosen[2], probe_time=True
                )
                if final == "Complete":
                    st["completionTime"] = timestamp()
            if not conditions:
                del st["conditions"]

        stored = self.store.update(JOBS, namespace, name, write)
        if new_target:
            reason = new_target[1]
            if new_target[0] == "FailureTarget":
                events.record(
                    self.store, job, reason, new_target[2], warning=True, component=_COMPONENT
                )
        if done and stored is not None:
            if _condition(stored, "Complete"):
                events.record(
                    self.store, stored, "Completed", "Job completed", component=_COMPONENT
                )
            self._expire(stored)
            return
        if not ending:
            wanted = min(
                int(spec.get("parallelism", 1)), int(spec.get("completions", 1)) - succeeded
            )
            for _ in range(max(0, wanted - len(active) - len(terminating))):
                self._create_pod(job, key)

    def _count(self, uid: str, pods: list[Obj]) -> tuple[int, int]:
        """Succeeded and failed pod counts, including pods gone before they finished."""
        job = self.store.by_uid(uid)
        status = (job or {}).get("status") or {}
        succeeded = int(status.get("succeeded", 0))
        failed = int(status.get("failed", 0))
        with self._lock:
            counted = self._counted.setdefault(uid, set())
            seen = self._seen_active.setdefault(uid, set())
            present = set()
            for pod in pods:
                pod_uid = pod["metadata"]["uid"]
                present.add(pod_uid)
                if pod_uid in counted:
                    continue
                phase = _phase(pod)
                if phase == "Succeeded":
                    succeeded += 1
                    counted.add(pod_uid)
                elif phase == "Failed":
                    failed += 1
                    counted.add(pod_uid)
                else:
                    seen.add(pod_uid)
            for gone in seen - present - counted:
                failed += 1  # deleted before it finished: a failure, as Kubernetes counts it
                counted.add(gone)
            seen -= counted
        return succeeded, failed

    def _create_pod(self, job: Obj, key: Hashable) -> None:
        uid = job["metadata"]["uid"]
        wait = self._next_create.get(uid, 0.0) - now().timestamp()
        if wait > 0:
            self.queue.add_after(key, wait)
            return
        template = job["spec"]["template"]
        meta = template.get("metadata") or {}
        pod: Obj = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "generateName": f"{job['metadata']['name']}-",
                "labels": dict(meta.get("labels") or {}),
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "name": job["metadata"]["name"],
                        "uid": uid,
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": template["spec"],
        }
        if meta.get("annotations"):
            pod["metadata"]["annotations"] = dict(meta["annotations"])
        namespace = job["metadata"]["namespace"]
        try:
            admitted = self._admission.for_create(PODS, pod, namespace)
            created = self.store.create(PODS, admitted)
        except ApiError as error:
            events.record(
                self.store,
                job,
                "FailedCreate",
                f"Error creating: {error.message}",
                warning=True,
                component=_COMPONENT,
            )
            failures = self._create_failures.get(uid, 0)
            self._create_failures[uid] = failures + 1
            delay = min(self._retry_backoff * 2**failures, 5.0)
            self._next_create[uid] = now().timestamp() + delay
            self.queue.add_after(key, delay)
            return
        self._create_failures.pop(uid, None)
        with self._lock:
            self._seen_active.setdefault(uid, set()).add(created["metadata"]["uid"])
        self._next_create[uid] = now().timestamp() + self._retry_backoff
        events.record(
            self.store,
            job,
            "SuccessfulCreate",
            f"Created pod: {created['metadata']['name']}",
            component=_COMPONENT,
        )

    def _delete_pod(self, pod: Obj) -> None:
        try:
            self.store.delete(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"])
        except ApiError as error:
            if error.code != 404:
                raise

    def _expire(self, job: Obj) -> None:
        """ttlSecondsAfterFinished: delete the finished Job (foreground) once its time is up."""
        ttl = dig(job, "spec", "ttlSecondsAfterFinished")
        if ttl is None:
            return
        finished = _condition(job, "Complete") or _condition(job, "Failed")
        assert finished is not None
        expires = parse_timestamp(finished["lastTransitionTime"]) + timedelta(seconds=int(ttl))
        remaining = (expires - now()).total_seconds()
        meta = job["metadata"]
        if remaining > 0:
            self.queue.add_after((meta["namespace"], meta["name"]), remaining)
            return
        try:
            self.store.delete(
                JOBS,
                meta["namespace"],
                meta["name"],
                propagation="Foreground",
                preconditions={"uid": meta["uid"]},
            )
        except ApiError as error:
            if error.code not in (404, 409):
                raise
        with self._lock:
            self._counted.pop(meta["uid"], None)
            self._seen_active.pop(meta["uid"], None)
        self._next_create.pop(meta["uid"], None)


def _phase(pod: Obj) -> str:
    return str(dig(pod, "status", "phase", default="Pending"))


def _ready(pod: Obj) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in dig(pod, "status", "conditions", default=[])
    )


def _condition(job: Obj, kind: str) -> Obj | None:
    for condition in dig(job, "status", "conditions", default=[]):
        if condition.get("type") == kind and condition.get("status") == "True":
            return condition  # type: ignore[no-any-return]
    return None


def _finished(job: Obj) -> bool:
    return _condition(job, "Complete") is not None or _condition(job, "Failed") is not None
