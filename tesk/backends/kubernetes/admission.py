"""What the Kubernetes API server or the kubelet would refuse in a task, refused at create.

A refusal found only when the executor pod is created comes after the inputs were staged, and
the task ends SYSTEM_ERROR for what is the request's fault: CreateTask answers 400 instead.
"""

from __future__ import annotations

import re

from tesk.tes.models import Task

# The container image reference grammar the kubelet parses (distribution/reference): a name with
# an optional registry host, then an optional tag and digest. Anything else is InvalidImageName.
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_PATH_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_PART}(?:/{_PATH_PART})*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
IMAGE_REFERENCE = re.compile(rf"(?P<name>{_NAME})(?::{_TAG})?(?:@{_DIGEST})?")
MAX_IMAGE_NAME = 255

# Environment variable names as the API server takes them since Kubernetes 1.30
# (RelaxedEnvironmentVariableValidation): printable ASCII but "=", at least one character.
ENV_NAME = re.compile(r"[\x20-\x3c\x3e-\x7e]+")


def check_task(task: Task) -> None:
    """Raise ValueError naming the first field the cluster would refuse."""
    for index, executor in enumerate(task.executors):
        where = f"executors[{index}]"
        problem = image_problem(executor.image)
        if problem:
            raise ValueError(f"{where}.image: {problem}")
        for name in executor.env or {}:
            if not ENV_NAME.fullmatch(name):
                raise ValueError(
                    f"{where}.env: {name!r} is not a name Kubernetes takes for an environment "
                    "variable (printable ASCII characters other than '=')"
                )


def image_problem(image: str) -> str | None:
    if not image or image != image.strip():
        return f"{image!r} is empty or has leading or trailing white space"
    match = IMAGE_REFERENCE.fullmatch(image)
    if match is None:
        return (
            f"{image!r} is not a container image reference ([registry/]name[:tag][@digest], the "
            "name in lower case)"
        )
    if len(match.group("name")) > MAX_IMAGE_NAME:
        return f"the image name is longer than {MAX_IMAGE_NAME} characters"
    return None
