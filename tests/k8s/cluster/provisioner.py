"""A dynamic provisioner for the test cluster's StorageClasses: each claim gets a
PersistentVolume on the node, a directory owned by root with mode 0755, as a CSI driver's volume
root is; its directory and volume are deleted when the claim is released.

    python -m tests.k8s.cluster.provisioner --kubeconfig K --root DIR --node NODE
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from . import agent

PROVISIONER = "tesk.test/hostpath"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"

log = logging.getLogger("provisioner")


class Provisioner:
    def __init__(self, api: client.ApiClient, root: Path, node: str) -> None:
        self.core = client.CoreV1Api(api)
        self.storage = client.StorageV1Api(api)
        self.root = root
        self.node = node

    def our_classes(self) -> set[str]:
        classes = self.storage.list_storage_class().items
        return {c.metadata.name for c in classes if c.provisioner == PROVISIONER}

    def step(self) -> None:
        classes = self.our_classes()
        volumes = {pv.metadata.name: pv for pv in self.core.list_persistent_volume().items}
        for claim in self.core.list_persistent_volume_claim_for_all_namespaces().items:
            annotations = claim.metadata.annotations or {}
            wanted = f"pvc-{claim.metadata.uid}"
            if (
                claim.status.phase == "Pending"
                and claim.spec.storage_class_name in classes
                and annotations.get(SELECTED_NODE) == self.node
                and not claim.spec.volume_name
                and wanted not in volumes
                and claim.metadata.deletion_timestamp is None
            ):
                self.provision(claim, wanted)
        for volume in volumes.values():
            annotations = volume.metadata.annotations or {}
            if annotations.get(PROVISIONED_BY) != PROVISIONER:
                continue
            if volume.status.phase in ("Released", "Failed") and (
                volume.spec.persistent_volume_reclaim_policy == "Delete"
            ):
                self.delete(volume)

    def provision(self, claim: Any, name: str) -> None:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o755)
        volume = {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": name, "annotations": {PROVISIONED_BY: PROVISIONER}},
            "spec": {
                "capacity": {"storage": claim.spec.resources.requests["storage"]},
                "accessModes": claim.spec.access_modes,
                "persistentVolumeReclaimPolicy": "Delete",
                "storageClassName": claim.spec.storage_class_name,
                "volumeMode": claim.spec.volume_mode or "Filesystem",
                "claimRef": {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "namespace": claim.metadata.namespace,
                    "name": claim.metadata.name,
                    "uid": claim.metadata.uid,
                },
                **self.source(claim.spec.storage_class_name, path),
                "nodeAffinity": {
                    "required": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {
                                        "key": "kubernetes.io/hostname",
                                        "operator": "In",
                                        "values": [self.node],
                                    }
                                ]
                            }
                        ]
                    }
                },
            },
        }
        try:
            self.core.create_persistent_volume(volume)
            log.info(
                "provisioned %s for %s/%s", name, claim.metadata.namespace, claim.metadata.name
            )
        except ApiException as error:
            if error.status != 409:
                raise

    def source(self, storage_class: str, path: Path) -> dict[str, Any]:
        """A `local` volume, to which the kubelet applies a pod's fsGroup as it does to the block
        volumes of most CSI drivers; or, for a class with parameter `fsGroup: ignored`, a
        hostPath volume, to which it does not (as drivers skip it for ReadWriteMany volumes)."""
        parameters = self.storage.read_storage_class(storage_class).parameters or {}
        if parameters.get("fsGroup") == "ignored":
            return {"hostPath": {"path": str(path), "type": "Directory"}}
        return {"local": {"path": str(path)}}

    def delete(self, volume: Any) -> None:
        shutil.rmtree(self.root / volume.metadata.name, ignore_errors=True)
        try:
            self.core.delete_persistent_volume(volume.metadata.name)
            log.info("deleted %s", volume.metadata.name)
        except ApiException as error:
            if error.status != 404:
                raise


def main() -> None:
    arguments = agent.parser(__doc__.splitlines()[0], interval=0.5)
    arguments.add_argument("--root", required=True, type=Path)
    arguments.add_argument("--node", required=True)
    args = arguments.parse_args()
    provisioner = Provisioner(agent.api_client(args.kubeconfig), args.root, args.node)
    agent.run_every(args.interval, provisioner.step, log)


if __name__ == "__main__":
    main()
