"""Bad values fail `helm template` (so `helm install`) with a message that names what to fix."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.deployment.chart import HelmResult

CASES = [
    pytest.param(
        {"replicaCount": 2},
        "more than one replica needs PostgreSQL",
        id="replicas-without-postgresql",
    ),
    pytest.param(
        {"database.type": "postgresql"},
        "database.existingSecret is empty",
        id="postgresql-without-secret",
    ),
    pytest.param(
        {"replicaCount": 0}, "at '/replicaCount': minimum: got 0, want 1", id="zero-replicas"
    ),
    pytest.param(
        {"tasks.defaultDiskGb": -1},
        "at '/tasks/defaultDiskGb': exclusiveMinimum",
        id="negative-disk",
    ),
    pytest.param(
        {"tasks.defaultDiskGb": 0}, "at '/tasks/defaultDiskGb': exclusiveMinimum", id="zero-disk"
    ),
    pytest.param(
        {"tasks.pendingTimeoutSeconds": 0},
        "at '/tasks/pendingTimeoutSeconds': minimum",
        id="timeout",
    ),
    pytest.param(
        {"tasks.maxRunningTasks": 0},
        "at '/tasks/maxRunningTasks': minimum",
        id="no-running-tasks",
    ),
    pytest.param(
        {"tasks.namespace": "Tasks_NS"},
        "at '/tasks/namespace': 'Tasks_NS' does not match pattern",
        id="bad-namespace",
    ),
    pytest.param({"replicas": 2}, "additional properties 'replicas' not allowed", id="unknown-key"),
    pytest.param({"filer.s3Bucket": "x"}, "additional properties 's3Bucket'", id="unknown-nested"),
    pytest.param(
        {"database.type": "mysql"},
        "at '/database/type': value must be one of 'sqlite', 'postgresql'",
        id="unsupported-database",
    ),
    pytest.param(
        {"image.pullPolicy": "Sometimes"},
        "at '/image/pullPolicy': value must be one of",
        id="pull-policy",
    ),
    pytest.param(
        {"persistence.size": "lots"},
        "at '/persistence/size': 'lots' does not match pattern",
        id="volume-size",
    ),
    pytest.param({"containerPort": 80}, "at '/containerPort': minimum", id="privileged-port"),
    pytest.param(
        {"service.type": "Cluster"}, "at '/service/type': value must be one of", id="service-type"
    ),
    pytest.param(
        {"limits.maxExecutors": 0}, "at '/limits/maxExecutors': minimum: got 0, want 1", id="limits"
    ),
    pytest.param(
        {"rbac.apiRules[0].verbs[0]": "escalate"},
        "at '/rbac/apiRules/0/verbs/0': value must be one of",
        id="verb",
    ),
    pytest.param(
        {"serviceAccount.api.create": False},
        "serviceAccount.api.name must name an existing ServiceAccount",
        id="account-without-name",
    ),
    pytest.param(
        {"serviceAccount.taskmaster.name": "tesk-api"},
        "must be three different accounts",
        id="shared-account",
    ),
    pytest.param(
        {"auth.mode": "basic"},
        "at '/auth/basic/existingSecret': minLength: got 0, want 1",
        id="basic-without-users-secret",
    ),
    pytest.param(
        {"auth.mode": "oidc", "auth.oidc.audience": ["tesk"]},
        "at '/auth/oidc/issuer': minLength: got 0, want 1",
        id="oidc-without-issuer",
    ),
    pytest.param(
        {"auth.mode": "oidc", "auth.oidc.issuer": "https://login.example.org"},
        "at '/auth/oidc/audience': minItems: got 0, want 1",
        id="oidc-without-audience",
    ),
    pytest.param(
        {"auth.oidc.issuer": "login.example.org"},
        "at '/auth/oidc/issuer': 'login.example.org' does not match pattern",
        id="issuer-not-a-url",
    ),
    pytest.param(
        {"auth.mode": "ldap"},
        "at '/auth/mode': value must be one of 'none', 'basic', 'oidc'",
        id="auth-mode",
    ),
    pytest.param(
        {"auth.oidc.algorithms": ["none"]},
        "at '/auth/oidc/algorithms/0': value must be one of",
        id="unsigned-tokens",
    ),
    pytest.param(
        {"auth.basic.usersFile": "alice:$argon2id$..."},
        "additional properties 'usersFile' not allowed",
        id="inline-users",
    ),
    pytest.param(
        {"auth.adminGroup": "admins,ops"},
        "at '/auth/adminGroup': 'admins,ops' does not match pattern",
        id="admin-group",
    ),
    pytest.param(
        {"tasks.volumeAccessMode": "ReadWriteSome"},
        "at '/tasks/volumeAccessMode': value must be one of",
        id="access-mode",
    ),
    pytest.param(
        {"tasks.instance": "Blue_Tesk"},
        "at '/tasks/instance': 'Blue_Tesk' does not match pattern",
        id="instance-label",
    ),
    pytest.param(
        {"tasks.resyncIntervalSeconds": 0},
        "at '/tasks/resyncIntervalSeconds': exclusiveMinimum",
        id="resync",
    ),
    pytest.param(
        {"taskmaster.memory": "lots"},
        "at '/taskmaster/memory': 'lots' does not match pattern",
        id="taskmaster-memory",
    ),
    pytest.param(
        {"executors.defaultCpuCores": 0},
        "at '/executors/defaultCpuCores': exclusiveMinimum",
        id="executor-cpu",
    ),
    pytest.param(
        {"filer.fileRoots": ["data"]},
        "at '/filer/fileRoots/0': 'data' does not match pattern",
        id="relative-file-root",
    ),
    pytest.param(
        {"filer.blockedNetworks": ["metadata.google.internal"]},
        "at '/filer/blockedNetworks/0': 'metadata.google.internal' does not match pattern",
        id="blocked-network",
    ),
    pytest.param(
        {"filer.chunkBytes": 1024},
        "at '/filer/chunkBytes': minimum: got 1,024, want 65,536",
        id="chunk",
    ),
]


@pytest.mark.parametrize(("overrides", "message"), CASES)
def test_bad_values_fail_with_a_clear_message(
    template: Callable[..., HelmResult], overrides: dict[str, object], message: str
) -> None:
    result = template(**overrides)
    assert result.returncode != 0, f"{overrides} rendered:\n{result.stdout[:500]}"
    assert message in result.stderr


def test_the_same_values_pass_once_fixed(template: Callable[..., HelmResult]) -> None:
    """The failures above come from the bad value, not from something else in the defaults."""
    fixed = {
        "replicaCount": 2,
        "database.type": "postgresql",
        "database.existingSecret": "tesk-db",
        "tasks.defaultDiskGb": 0.5,
        "tasks.namespace": "tasks",
        "auth.mode": "oidc",
        "auth.oidc.issuer": "https://login.example.org",
        "auth.oidc.audience": ["tesk"],
        "auth.oidc.algorithms": ["RS256"],
        "auth.adminGroup": "admins",
        "filer.fileRoots": ["/data"],
        "filer.blockedNetworks": ["169.254.0.0/16", "fe80::/10"],
    }
    result = template(**fixed)
    assert result.returncode == 0, result.stderr
    basic = {"auth.mode": "basic", "auth.basic.existingSecret": "tesk-users"}
    result = template(**basic)
    assert result.returncode == 0, result.stderr
