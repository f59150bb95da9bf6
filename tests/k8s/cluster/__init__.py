"""A real single-node Kubernetes for the tests, built from the Go module proxy: see
docs/testing-kubernetes.md. `python -m tests.k8s.cluster up|down|status`."""

from .cluster import Cluster, ClusterError
from .layout import Layout

__all__ = ["Cluster", "ClusterError", "Layout"]
