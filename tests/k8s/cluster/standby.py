"""A second node for the test cluster that runs nothing: it only keeps its Lease and Ready
condition fresh, from another zone, and is tainted so that no pod is ever placed on it.

Why: the node lifecycle controller takes the loss of every node of a cluster for a partition of
the control plane itself ("all Nodes are not-Ready: entering master disruption mode") and then
evicts nothing. With one node that would make a lost node impossible to test; with this one
still answering, the real node's loss is treated as in any cluster of several nodes.

    python -m tests.k8s.cluster.standby --kubeconfig K --name NODE --zone ZONE
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from . import agent

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

    def step(self) -> None:
        self.ensure_node()
        self.heartbeat()

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
    arguments = agent.parser(__doc__.splitlines()[0], interval=4.0)
    arguments.add_argument("--name", required=True)
    arguments.add_argument("--zone", required=True)
    args = arguments.parse_args()
    standby = Standby(agent.api_client(args.kubeconfig), args.name, args.zone)
    agent.run_every(args.interval, standby.step, log)


if __name__ == "__main__":
    main()
