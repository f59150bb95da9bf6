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
    }
    result = template(**fixed)
    assert result.returncode == 0, result.stderr
