"""A second node for the test cluster that runs nothing: it only keeps its Lease and Ready
condition fresh, from another zone, and is tainted so that no pod is ever placed on it.

Why: the node lifecycle controller takes the loss of every node of a cluster for a partition of
the control plane itself ("all Nodes are not-Ready: entering master disruption mode") and then
evicts nothing. With one node that would make a lost node impossible to test; with this one
still answering, the real node's loss is treated as in any cluster of several nodes.

    python -m tests.k8s.cluster.standby --kubeconfig K --name NODE --zone ZONE
"""

from __future__ import annotations

import argparse
import logging
import time
from datetime import UTC, datetime
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

log = logging.getLogger("standby")
LEASE_NAMESPACE = "kube-node-lease"
TAINT = {"key": "tesk.test/standby", "value": "runs-nothing", "effect": "NoSchedule"}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Standby:
    def __init__(self, api: client.ApiClient, name: str, zone: str) -> None:
        self.core = client.CoreV1Api(api)
        self.coordination = client.CoordinationV1Api(api)
        self.name = name
        self.zone = zone

    def ensure_node(self) -> None:
        node: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.name,
                "labels": {
                    "kubernetes.io/hostname": self.name,
                    "topology.kubernetes.io/zone": self.zone,
                    "tesk.test/standby": "true",
                },
            },
            "spec": {"taints": [TAINT]},
        }
        try:
            self.core.create_node(node)
        except ApiException as error:
            if error.status != 409:
                raise

    def heartbeat(self) -> None:
        now = _now()
        status = {
            "status": {
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "StandbyReady",
                        "message": "a test cluster's standby node: it runs nothing",
                        "lastHeartbeatTime": now,
                        "lastTransitionTime": now,
                    }
                ],
                "capacity": {"cpu": "1", "memory": "1Gi", "pods": "0"},
                "allocatable": {"cpu": "1", "memory": "1Gi", "pods": "0"},
            }
        }
        self.core.patch_node_status(self.name, status)
        lease = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": LEASE_NAMESPACE},
            "spec": {"holderIdentity": self.name, "leaseDurationSeconds": 40, "renewTime": now},
        }
        try:
            self.coordination.patch_namespaced_lease(
                self.name, LEASE_NAMESPACE, {"spec": lease["spec"]}
            )
        except ApiException as error:
            if error.status != 404:
                raise
            self.coordination.create_namespaced_lease(LEASE_NAMESPACE, lease)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--zone", required=True)
    parser.add_argument("--interval", type=float, default=4.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    standby = Standby(
        config.new_client_from_config(config_file=args.kubeconfig), args.name, args.zone
    )
    while True:
        try:
            standby.ensure_node()
            standby.heartbeat()
        except Exception as error:  # the API server may be restarting: try again
            log.warning("standby heartbeat failed: %s", error)
        time.sleep(args.interval)


if __name__ == "__main__":
    main()
