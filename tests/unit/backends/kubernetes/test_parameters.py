"""backend_parameters of the Kubernetes backend: parsed into pod placement, or a clear error."""

from __future__ import annotations

import pytest

from tesk.backends.kubernetes import parameters
from tesk.backends.kubernetes.parameters import Placement


def test_every_key_parses() -> None:
    placement = parameters.parse(
        {
            "node_selector": "pool=gpu, kubernetes.io/arch=amd64",
            "tolerations": "gpu=true:NoSchedule,dedicated,spot:NoExecute",
            "gpu_count": "2",
            "max_runtime_seconds": "3600",
            "image_pull_secret": "my-registry",
        }
    )
    assert placement == Placement(
        node_selector={"pool": "gpu", "kubernetes.io/arch": "amd64"},
        tolerations=[
            {"effect": "NoSchedule", "key": "gpu", "operator": "Equal", "value": "true"},
            {"key": "dedicated", "operator": "Exists"},
            {"effect": "NoExecute", "key": "spot", "operator": "Exists"},
        ],
        gpu_count=2,
        max_runtime_s=3600,
        image_pull_secret="my-registry",
    )


def test_nothing_asked_is_nothing_changed() -> None:
    assert parameters.parse(None) == Placement()
    assert parameters.parse({}) == Placement()


def test_keys_are_case_insensitive() -> None:
    assert parameters.parse({"GPU_Count": "1"}).gpu_count == 1


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"node_selector": "pool"}, "is not key=value"),
        ({"node_selector": "a=b,,c=d"}, "empty entry"),
        ({"node_selector": "bad key=x"}, "not a valid Kubernetes label key"),
        ({"node_selector": "pool=has space"}, "not a valid label value"),
        ({"tolerations": "gpu:Sometimes"}, "is not one of NoSchedule"),
        ({"tolerations": ""}, "empty entry"),
        ({"gpu_count": "0"}, "not a whole number from 1"),
        ({"gpu_count": "1.5"}, "not a whole number"),
        ({"max_runtime_seconds": "-5"}, "not a whole number"),
        ({"image_pull_secret": "Not_A_Name"}, "not a valid Secret name"),
    ],
)
def test_bad_values_say_what_is_wrong(params: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        parameters.parse(params)
    assert str(caught.value).startswith(next(iter(params)))


def test_image_pull_secrets_can_be_limited_to_a_list() -> None:
    assert parameters.parse({"image_pull_secret": "ok"}, ["ok"]).image_pull_secret == "ok"
    with pytest.raises(ValueError, match="not one of the Secrets this service allows"):
        parameters.parse({"image_pull_secret": "other"}, ["ok"])
