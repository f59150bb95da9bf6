"""The persistent volume controller: binds claims to directories under the cluster's temp dir
(one per claim, a dynamically provisioned volume with reclaim policy Delete)."""

from __future__ import annotations

import shutil
from collections.abc import Hashable
from pathlib import Path

from . import events
from .controller import Controller
from .meta import Obj, dig
from .outcomes import ClaimPending, Scripts
from .resources import BY_PLURAL
from .store import Event, Store

CLAIMS = BY_PLURAL["persistentvolumeclaims"]
CLASSES = BY_PLURAL["storageclasses"]
SELECTED_NODE = "volume.kubernetes.io/selected-node"
_COMPONENT = "persistentvolume-controller"


class VolumeBinder(Controller):
    name = "persistentvolume-controller"

    def __init__(self, store: Store, errors: list[str], root: Path, scripts: Scripts) -> None:
        super().__init__(store, errors)
        self.root = root
        self._scripts = scripts
        self._reported: set[tuple[str, str]] = set()

    def retry_pending(self) -> None:
        claims, _ = self.store.list(CLAIMS)
        for claim in claims:
            if dig(claim, "status", "phase") == "Pending":
                self.queue.add((claim["metadata"]["namespace"], claim["metadata"]["name"]))

    def path_for(self, claim: Obj) -> Path:
        return self.root / f"pvc-{claim['metadata']['uid']}"

    def keys_for(self, event: Event) -> list[Hashable]:
        if event.resource.plural != "persistentvolumeclaims":
            return []
        meta = event.obj["metadata"]
        if event.type == "DELETED":
            # Reclaim policy Delete: the volume goes with its claim.
            return [("reclaim", str(self.path_for(event.obj)))]
        return [(meta["namespace"], meta["name"])]

    def sync(self, key: Hashable) -> None:
        assert isinstance(key, tuple)
        if key[0] == "reclaim":
            shutil.rmtree(key[1], ignore_errors=True)
            return
        namespace, name = key
        claim = self.store.try_get(CLAIMS, namespace, name)
        if claim is None or dig(claim, "status", "phase") != "Pending":
            return
        if claim["metadata"].get("deletionTimestamp"):
            return
        outcome = self._scripts.outcome_for("persistentvolumeclaims", claim)
        if isinstance(outcome, ClaimPending):
            self._report(claim, "ExternalProvisioning", outcome.message)
            return
        class_name = dig(claim, "spec", "storageClassName")
        storage_class = self.store.try_get(CLASSES, "", class_name) if class_name else None
        if class_name and storage_class is None:
            self._report(
                claim,
                "ProvisioningFailed",
                f'storageclass.storage.k8s.io "{class_name}" not found',
                warning=True,
            )
            return
        if not class_name:
            self._report(
                claim,
                "FailedBinding",
                "no persistent volumes available for this claim and no storage class is set",
                warning=True,
            )
            return
        assert storage_class is not None
        waits = storage_class.get("volumeBindingMode") == "WaitForFirstConsumer"
        if waits and not dig(claim, "metadata", "annotations", SELECTED_NODE):
            self._report(
                claim,
                "WaitForFirstConsumer",
                "waiting for first consumer to be created before binding",
            )
            return
        self.bind(claim, storage_class)

    def bind(self, claim: Obj, storage_class: Obj) -> None:
        path = self.path_for(claim)
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o777)
        volume = f"pvc-{claim['metadata']['uid']}"

        def bound(current: Obj) -> None:
            annotations = current["metadata"].setdefault("annotations", {})
            annotations["pv.kubernetes.io/bind-completed"] = "yes"
            annotations["pv.kubernetes.io/bound-by-controller"] = "yes"
            provisioner = storage_class.get("provisioner", "")
            annotations["volume.beta.kubernetes.io/storage-provisioner"] = provisioner
            annotations["volume.kubernetes.io/storage-provisioner"] = provisioner
            current["spec"]["volumeName"] = volume
            status = current.setdefault("status", {})
            status["phase"] = "Bound"
            status["accessModes"] = list(dig(current, "spec", "accessModes", default=[]))
            status["capacity"] = {
                "storage": dig(current, "spec", "resources", "requests", "storage")
            }

        meta = claim["metadata"]
        self.store.update(CLAIMS, meta["namespace"], meta["name"], bound)
        events.record(
            self.store,
            claim,
            "ProvisioningSucceeded",
            f"Successfully provisioned volume {volume}",
            component=_COMPONENT,
        )

    def _report(self, claim: Obj, reason: str, message: str, *, warning: bool = False) -> None:
        key = (claim["metadata"]["uid"], reason)
        if key not in self._reported:
            self._reported.add(key)
            events.record(self.store, claim, reason, message, warning=warning, component=_COMPONENT)
