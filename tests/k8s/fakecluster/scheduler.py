"""The scheduler: binds pods to the one node when their claims, node selector and resource
requests allow it, else leaves them Pending with PodScheduled=False (reason Unschedulable)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from decimal import Decimal

from . import events
from .controller import Controller
from .meta import Obj, dig, labels_of, set_condition
from .outcomes import Scripts, Unschedulable
from .quantity import parse_quantity
from .resources import BY_PLURAL
from .store import Event, Store
from .volumes import CLAIMS, CLASSES, SELECTED_NODE

PODS = BY_PLURAL["pods"]
NODES = BY_PLURAL["nodes"]
_COMPONENT = "default-scheduler"
_TERMINAL = ("Succeeded", "Failed")
_SUFFIX = " preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."


class Scheduler(Controller):
    name = "scheduler"

    def __init__(
        self,
        store: Store,
        errors: list[str],
        node: str,
        scripts: Scripts,
        bind_claim: Callable[[Obj, Obj], None],
    ) -> None:
        super().__init__(store, errors)
        self.node = node
        self._scripts = scripts
        self._bind_claim = bind_claim
        self._pending: set[tuple[str, str]] = set()
        self._pending_lock = threading.Lock()
        self._reported: dict[str, str] = {}

    def keys_for(self, event: Event) -> list[Hashable]:
        plural = event.resource.plural
        obj = event.obj
        if plural == "pods" and event.type != "DELETED" and not dig(obj, "spec", "nodeName"):
            return [(obj["metadata"]["namespace"], obj["metadata"]["name"])]
        freed = plural == "pods" and (
            event.type == "DELETED" or dig(obj, "status", "phase") in _TERMINAL
        )
        if freed or plural in ("persistentvolumeclaims", "nodes", "storageclasses"):
            return self._pending_keys()  # something changed that may let them fit now
        return []

    def _pending_keys(self) -> list[Hashable]:
        with self._pending_lock:
            return list(self._pending)

    def retry_pending(self) -> None:
        for key in self._pending_keys():
            self.queue.add(key)

    def sync(self, key: Hashable) -> None:
        assert isinstance(key, tuple)
        namespace, name = key
        pod = self.store.try_get(PODS, namespace, name)
        if pod is None or dig(pod, "spec", "nodeName") or pod["metadata"].get("deletionTimestamp"):
            with self._pending_lock:
                self._pending.discard(key)
            return
        if dig(pod, "spec", "schedulerName", default="default-scheduler") != "default-scheduler":
            return
        outcome = self._scripts.outcome_for("pods", pod)
        why = outcome.message if isinstance(outcome, Unschedulable) else self._why_not(pod)
        with self._pending_lock:
            if why:
                self._pending.add(key)
            else:
                self._pending.discard(key)
        if why:
            self._mark_unschedulable(pod, why)
            return
        node = self.store.get(NODES, "", self.node)
        for claim in self._claims(pod):
            if dig(claim, "status", "phase") == "Pending":
                self._select_node(claim)
        self._bind(pod, node)

    def _why_not(self, pod: Obj) -> str | None:
        namespace = pod["metadata"]["namespace"]
        for volume in dig(pod, "spec", "volumes", default=[]):
            claim_name = dig(volume, "persistentVolumeClaim", "claimName")
            if not claim_name:
                continue
            claim = self.store.try_get(CLAIMS, namespace, claim_name)
            if claim is None:
                return f'0/1 nodes are available: persistentvolumeclaim "{claim_name}" not found.'
            if claim["metadata"].get("deletionTimestamp"):
                return (
                    f'0/1 nodes are available: persistentvolumeclaim "{claim_name}" is being '
                    "deleted."
                )
            if dig(claim, "status", "phase") != "Bound":
                class_name = dig(claim, "spec", "storageClassName")
                storage_class = self.store.try_get(CLASSES, "", class_name) if class_name else None
                if (
                    storage_class is None
                    or storage_class.get("volumeBindingMode") != "WaitForFirstConsumer"
                    or self._scripts.outcome_for("persistentvolumeclaims", claim) is not None
                ):
                    return (
                        "0/1 nodes are available: pod has unbound immediate "
                        "PersistentVolumeClaims." + _SUFFIX
                    )
        node = self.store.get(NODES, "", self.node)
        selector = dig(pod, "spec", "nodeSelector", default={}) or {}
        node_labels = labels_of(node)
        if any(node_labels.get(k) != v for k, v in selector.items()):
            return (
                "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/"
                "selector." + _SUFFIX
            )
        allocatable = dig(node, "status", "allocatable", default={})
        used = self._requested_on_node()
        wanted = pod_requests(pod)
        wanted["pods"] = Decimal(1)
        short = []
        for resource_name, amount in sorted(wanted.items()):
            if amount <= 0:
                continue
            available = parse_quantity(allocatable.get(resource_name, "0"))
            if used.get(resource_name, Decimal(0)) + amount > available:
                short.append(
                    "Too many pods" if resource_name == "pods" else f"Insufficient {resource_name}"
                )
        if short:
            return (
                "0/1 nodes are available: "
                + ", ".join(f"1 {s}" for s in short)
                + "."
                + (
                    " preemption: 0/1 nodes are available: 1 No preemption victims found for "
                    "incoming pod."
                )
            )
        return None

    def _requested_on_node(self) -> dict[str, Decimal]:
        pods, _ = self.store.list(PODS)
        used: dict[str, Decimal] = {}
        for pod in pods:
            if (
                dig(pod, "spec", "nodeName") != self.node
                or dig(pod, "status", "phase") in _TERMINAL
            ):
                continue
            for name, amount in pod_requests(pod).items():
                used[name] = used.get(name, Decimal(0)) + amount
            used["pods"] = used.get("pods", Decimal(0)) + 1
        return used

    def _claims(self, pod: Obj) -> list[Obj]:
        found = []
        for volume in dig(pod, "spec", "volumes", default=[]):
            claim_name = dig(volume, "persistentVolumeClaim", "claimName")
            if claim_name:
                claim = self.store.try_get(CLAIMS, pod["metadata"]["namespace"], claim_name)
                if claim is not None:
                    found.append(claim)
        return found

    def _select_node(self, claim: Obj) -> None:
        """WaitForFirstConsumer: the scheduler picks the node, then the claim can bind."""

        def annotate(current: Obj) -> None:
            current["metadata"].setdefault("annotations", {})[SELECTED_NODE] = self.node

        meta = claim["metadata"]
        stored = self.store.update(CLAIMS, meta["namespace"], meta["name"], annotate)
        class_name = dig(claim, "spec", "storageClassName")
        storage_class = self.store.try_get(CLASSES, "", class_name) if class_name else None
        if stored is not None and storage_class is not None:
            self._bind_claim(stored, storage_class)

    def _mark_unschedulable(self, pod: Obj, why: str) -> None:
        def mark(current: Obj) -> None:
            conditions = current.setdefault("status", {}).setdefault("conditions", [])
            set_condition(
                conditions,
                "PodScheduled",
                "False",
                reason="Unschedulable",
                message=why,
                probe_time=False,
            )

        meta = pod["metadata"]
        self.store.update(PODS, meta["namespace"], meta["name"], mark)
        if self._reported.get(meta["uid"]) != why:
            self._reported[meta["uid"]] = why
            events.record(
                self.store, pod, "FailedScheduling", why, warning=True, component=_COMPONENT
            )

    def _bind(self, pod: Obj, node: Obj) -> None:
        def bind(current: Obj) -> None:
            current["spec"]["nodeName"] = self.node
            conditions = current.setdefault("status", {}).setdefault("conditions", [])
            set_condition(conditions, "PodScheduled", "True")

        meta = pod["metadata"]
        self.store.update(PODS, meta["namespace"], meta["name"], bind)
        events.record(
            self.store,
            pod,
            "Scheduled",
            f"Successfully assigned {meta['namespace']}/{meta['name']} to {self.node}",
            component=_COMPONENT,
        )


def pod_requests(pod: Obj) -> dict[str, Decimal]:
    """A pod's effective requests: the sum over containers, or the largest init container."""
    total: dict[str, Decimal] = {}
    for container in dig(pod, "spec", "containers", default=[]):
        for name, value in (dig(container, "resources", "requests", default={}) or {}).items():
            total[name] = total.get(name, Decimal(0)) + parse_quantity(value)
    for container in dig(pod, "spec", "initContainers", default=[]):
        for name, value in (dig(container, "resources", "requests", default={}) or {}).items():
            total[name] = max(total.get(name, Decimal(0)), parse_quantity(value))
    return total
