"""Fixtures for Kubernetes tests: the real test cluster, one namespace per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.k8s.cluster import Cluster
from tests.k8s.realcluster import TestCluster, cluster_or_fail, new_namespace


@pytest.fixture(scope="session")
def real_cluster() -> Cluster:
    return cluster_or_fail()


@pytest.fixture
def cluster(real_cluster: Cluster) -> Iterator[TestCluster]:
    """A fresh namespace enforcing Pod Security `restricted`, with TESK's accounts and Role."""
    view = TestCluster(real_cluster, new_namespace())
    view.prepare()
    yield view
    view.remove()


@pytest.fixture
def privileged_cluster(real_cluster: Cluster) -> Iterator[TestCluster]:
    """A fresh namespace that admits any pod (hostPath volumes, root), with TESK's accounts."""
    view = TestCluster(real_cluster, new_namespace())
    view.prepare(pod_security="privileged")
    yield view
    view.remove()
