"""Scripted outcomes: what the cluster does to pods (or claims) matching a predicate, instead of
running them normally. Times are compressed: what takes minutes on a cluster takes `after`
seconds here."""

from __future__ import annotations

import fnmatch
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from .meta import Obj, dig, labels_of
from .selectors import parse_label_selector

Predicate = Callable[[Obj], bool]


class Outcome:
    """Base of every scripted outcome; `applies_to` is the resource it is for."""

    applies_to = "pods"


@dataclass(frozen=True)
class Unschedulable(Outcome):
    """The scheduler finds no node: Pending with PodScheduled=False, reason Unschedulable."""

    message: str = (
        "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: "
        "1 No preemption victims found for incoming pod."
    )


@dataclass(frozen=True)
class ImagePullFailure(Outcome):
    """The image cannot be pulled: the container waits with ErrImagePull, then alternates with
    ImagePullBackOff (`back_off_after` seconds later), until the pod is deleted."""

    message: str = "failed to pull and unpack image: not found"
    back_off_after: float = 0.2


@dataclass(frozen=True)
class OOMKilled(Outcome):
    """The container runs and is killed `after` seconds later: exit 137, reason OOMKilled."""

    after: float = 0.0


@dataclass(frozen=True)
class Evicted(Outcome):
    """The kubelet evicts the pod `after` seconds into its run: phase Failed, reason Evicted,
    DisruptionTarget=True (TerminationByKubelet)."""

    after: float = 0.0
    message: str = (
        "The node was low on resource: memory. Threshold quantity: 100Mi, available: 51200Ki. "
    )


@dataclass(frozen=True)
class NodeLost(Outcome):
    """The node vanishes `after` seconds into the run: containers die unreported, the pod turns
    not ready, gets DisruptionTarget (DeletionByTaintManager) and a deletionTimestamp while its
    phase stays Running; `gc_after` seconds later pod GC marks it Failed (DeletionByPodGC) and
    removes it."""

    after: float = 0.0
    gc_after: float = 1.0


@dataclass(frozen=True)
class Exit(Outcome):
    """Pretend to run: after `after` seconds the container exits with `code`, its log `log`.
    Nothing is executed."""

    code: int = 0
    log: str = ""
    after: float = 0.0


@dataclass(frozen=True)
class SlowStart(Outcome):
    """Stay ContainerCreating for `seconds` before running normally."""

    seconds: float = 1.0


@dataclass(frozen=True)
class ClaimPending(Outcome):
    """A PersistentVolumeClaim that never binds (no volume can be provisioned)."""

    applies_to = "persistentvolumeclaims"
    message: str = "waiting for a volume to be created by the external provisioner"


@dataclass
class Script:
    predicate: Predicate
    outcome: Outcome
    times: int | None  # how many more objects it may take; None: unlimited
    matched: list[str] = field(default_factory=list)  # names of the objects it took
    cancelled: bool = False
    on_cancel: Callable[[], None] | None = None

    def cancel(self) -> None:
        """Stop applying the outcome (an Unschedulable pod becomes schedulable again)."""
        self.cancelled = True
        if self.on_cancel is not None:
            self.on_cancel()


class Scripts:
    """The scripts of a cluster; an object gets the first matching script, decided once."""

    def __init__(self, on_cancel: Callable[[], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._scripts: list[Script] = []
        self._decided: dict[str, Script | None] = {}
        self._on_cancel = on_cancel

    def add(self, predicate: Predicate, outcome: Outcome, times: int | None) -> Script:
        script = Script(predicate, outcome, times, on_cancel=self._on_cancel)
        with self._lock:
            self._scripts.append(script)
        return script

    def outcome_for(self, resource: str, obj: Obj) -> Outcome | None:
        uid = obj["metadata"]["uid"]
        with self._lock:
            script = self._decided.get(uid)
            if uid not in self._decided or (script is not None and script.cancelled):
                script = self._choose(resource, obj)
                self._decided[uid] = script
            if script is None or script.cancelled:
                return None
            return script.outcome

    def _choose(self, resource: str, obj: Obj) -> Script | None:
        for script in self._scripts:
            if script.cancelled or script.outcome.applies_to != resource:
                continue
            if script.times is not None and script.times <= 0:
                continue
            if script.predicate(obj):
                if script.times is not None:
                    script.times -= 1
                script.matched.append(obj["metadata"]["name"])
                return script
        return None


# ---------------------------------------------------------------------- predicates


def name_matches(pattern: str) -> Predicate:
    """Objects whose name matches the shell pattern (`task-*-exec-0`)."""
    return lambda obj: fnmatch.fnmatchcase(dig(obj, "metadata", "name", default=""), pattern)


def labels_match(selector: str) -> Predicate:
    """Objects whose labels match a label selector (`app=x,role in (executor)`)."""
    parsed = parse_label_selector(selector)
    return lambda obj: parsed.matches(labels_of(obj))


def command_contains(text: str) -> Predicate:
    """Pods with a container whose command or args contain `text`."""

    def check(obj: Obj) -> bool:
        for container in dig(obj, "spec", "containers", default=[]):
            words = [*(container.get("command") or []), *(container.get("args") or [])]
            if any(text in word for word in words):
                return True
        return False

    return check


def everything(obj: Obj) -> bool:
    return True
