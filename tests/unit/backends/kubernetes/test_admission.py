"""Image references and environment variable names the cluster would refuse, refused at create."""

from __future__ import annotations

import pytest

from tesk.backends.kubernetes.admission import check_task, image_problem
from tesk.tes.errors import InvalidRequest
from tesk.tes.models import Task
from tesk.tes.states import State
from tests.fakes.fake_backend import FakeBackend
from tests.unit.test_service import make_service

ALL_STATES = list(State)


@pytest.mark.parametrize(
    "image",
    [
        "busybox",
        "busybox:1.36",
        "docker.io/library/ubuntu:24.04",
        "localhost:5000/team/tool_x:v1.2-rc.1",
        "quay.io/biocontainers/samtools:1.19--h50ea8bc_0",
        "ghcr.io/o/x@sha256:" + "a" * 64,
        "[::1]:5000/img:1",
    ],
)
def test_images_the_kubelet_parses_are_taken(image: str) -> None:
    assert image_problem(image) is None


@pytest.mark.parametrize(
    "image",
    ["", " busybox", "busybox ", "Busybox", "busy box", "ubuntu:", "a//b", "x:" + "t" * 129],
)
def test_images_the_kubelet_calls_invalid_are_refused(image: str) -> None:
    assert image_problem(image) is not None


def test_env_names_with_an_equals_sign_or_control_characters_are_refused() -> None:
    good = Task.model_validate(
        {"executors": [{"image": "busybox", "command": ["true"], "env": {"A.b-c d": "x"}}]}
    )
    check_task(good)
    for name in ("A=B", "TAB\tNAME", "é"):
        bad = Task.model_validate(
            {"executors": [{"image": "busybox", "command": ["true"], "env": {name: "x"}}]}
        )
        with pytest.raises(ValueError, match=r"executors\[0\]\.env"):
            check_task(bad)


def test_the_service_answers_400_with_the_backends_reason_and_stores_nothing() -> None:
    backend = FakeBackend(refuse_task="executors[0].image: 'X' is bad")
    service, store, _, _ = make_service(backend=backend)
    with pytest.raises(InvalidRequest, match=r"executors\[0\]\.image: 'X' is bad"):
        service.create({"executors": [{"image": "X", "command": ["true"]}]})
    assert store.find(ALL_STATES) == []
    assert backend.submitted == []
