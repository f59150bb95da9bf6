"""Fixtures for Kubernetes tests: a fake cluster on 127.0.0.1 and real `kubernetes` clients."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from kubernetes import client, config

from tests.k8s.fakecluster import FakeCluster


@pytest.fixture
def fake_cluster() -> Iterator[FakeCluster]:
    """A fresh fake cluster; fails the test if one of its controllers failed."""
    if shutil.which("bwrap") is None:
        pytest.skip("the fake kubelet runs pods in bubblewrap: apt-get install bubblewrap")
    with FakeCluster() as cluster:
        yield cluster
        assert cluster.errors == [], "\n".join(cluster.errors)


@pytest.fixture
def k8s_client(fake_cluster: FakeCluster) -> Iterator[client.ApiClient]:
    api = config.new_client_from_config(config_file=fake_cluster.kubeconfig_path)
    yield api
    api.close()


@pytest.fixture
def core_v1(k8s_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(k8s_client)


@pytest.fixture
def batch_v1(k8s_client: client.ApiClient) -> client.BatchV1Api:
    return client.BatchV1Api(k8s_client)
