"""Task documents for the client: read from JSON or YAML, or built from `tesk run` options.

Every function raises ValueError with a message that names what is wrong; the commands turn it
into a usage error.
"""

from __future__ import annotations

import json
import posixpath
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

_WILDCARDS = frozenset("*?[")


def parse_task(text: str, source: str) -> dict[str, Any]:
    """A task document from JSON or YAML text (`source` names it in errors)."""
    if not text.strip():
        raise ValueError(f"{source}: empty; expected a TES task as JSON or YAML")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as json_error:
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            if text.lstrip().startswith(("{", "[")):
                raise ValueError(
                    f"{source}: not valid JSON: {json_error.msg} "
                    f"(line {json_error.lineno}, column {json_error.colno})"
                ) from None
            raise ValueError(f"{source}: not valid YAML: {_yaml_reason(exc)}") from None
    if not isinstance(document, dict):
        raise ValueError(
            f"{source}: a task is a JSON/YAML object (mapping), not {type(document).__name__}"
        )
    return document


def build_task(
    image: str,
    command: Sequence[str],
    *,
    inputs: Sequence[str] = (),
    outputs: Sequence[str] = (),
    cpu: int | None = None,
    ram_gb: float | None = None,
    disk_gb: float | None = None,
    tags: Sequence[str] = (),
    name: str | None = None,
    workdir: str | None = None,
    env: Sequence[str] = (),
) -> dict[str, Any]:
    """The task `tesk run` submits: one executor and the given inputs, outputs and resources."""
    if not image:
        raise ValueError("IMAGE must not be empty")
    if not command:
        raise ValueError("no command given: tesk run IMAGE -- COMMAND [ARG...]")
    executor: dict[str, Any] = {"image": image, "command": list(command)}
    if workdir:
        executor["workdir"] = workdir
    if env:
        executor["env"] = dict(
            parse_pair(item, "--env", "NAME=VALUE", empty_value=True) for item in env
        )
    task: dict[str, Any] = {"executors": [executor]}
    if name:
        task["name"] = name
    if inputs:
        task["inputs"] = [parse_input(item) for item in inputs]
    if outputs:
        task["outputs"] = [parse_output(item) for item in outputs]
    resources: dict[str, Any] = {}
    if cpu is not None:
        resources["cpu_cores"] = cpu
    if ram_gb is not None:
        resources["ram_gb"] = ram_gb
    if disk_gb is not None:
        resources["disk_gb"] = disk_gb
    if resources:
        task["resources"] = resources
    if tags:
        task["tags"] = dict(parse_tag(item) for item in tags)
    return task


def parse_input(item: str) -> dict[str, Any]:
    """`PATH=URL` (downloaded by the server), `PATH=@FILE` (FILE's text sent inline as
    `content`), or `PATH=@-` (standard input sent inline)."""
    path, source = parse_pair(item, "--input", "PATH=URL or PATH=@FILE")
    _absolute(path, "--input", item)
    if source.startswith("@"):
        return {"path": path, "content": _read_content(source[1:], item)}
    if "://" not in source:
        raise ValueError(
            f"--input {item!r}: {source!r} is neither a URL (scheme://...) nor @FILE "
            "(a local file whose content is sent with the task)"
        )
    return {"path": path, "url": source}


def parse_output(item: str) -> dict[str, Any]:
    """`PATH=URL`; a PATH with wildcards uploads every match below URL, keeping the part of
    its path after the last directory without wildcards."""
    path, url = parse_pair(item, "--output", "PATH=URL")
    _absolute(path, "--output", item)
    if "://" not in url:
        raise ValueError(f"--output {item!r}: {url!r} is not a URL (scheme://...)")
    output: dict[str, Any] = {"path": path, "url": url}
    if any(char in _WILDCARDS for char in path):
        output["path_prefix"] = wildcard_prefix(path)
    return output


def wildcard_prefix(path: str) -> str:
    """The directories of `path` before its first component with a wildcard, with a final /."""
    kept: list[str] = []
    for part in path.split("/"):
        if any(char in _WILDCARDS for char in part):
            break
        kept.append(part)
    prefix = "/".join(kept)
    return prefix if prefix.endswith("/") else prefix + "/"


def parse_tag(item: str) -> tuple[str, str]:
    """`KEY=VALUE`, or `KEY` alone for an empty value."""
    key, _, value = item.partition("=")
    if not key:
        raise ValueError(f"--tag {item!r}: expected KEY=VALUE (the key must not be empty)")
    return key, value


def parse_tag_filter(item: str) -> tuple[str, str | None]:
    """`KEY=VALUE` matches that value; `KEY` alone matches any value."""
    key, has_value, value = item.partition("=")
    if not key:
        raise ValueError(f"--tag {item!r}: expected KEY or KEY=VALUE")
    return key, value if has_value else None


def parse_pair(item: str, option: str, shape: str, *, empty_value: bool = False) -> tuple[str, str]:
    left, has_value, right = item.partition("=")
    if not has_value or not left or not (right or empty_value):
        raise ValueError(f"{option} {item!r}: expected {shape}")
    return left, right


def _absolute(path: str, option: str, item: str) -> None:
    if not posixpath.isabs(path):
        raise ValueError(f"{option} {item!r}: {path!r} is not an absolute path in the container")


def _read_content(name: str, item: str) -> str:
    try:
        data = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
    except OSError as exc:
        raise ValueError(f"--input {item!r}: cannot read {name}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(
            f"--input {item!r}: {name} is not UTF-8 text; inline content must be text "
            "(give binary inputs by URL)"
        ) from None


def _yaml_reason(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return " ".join(f"{problem}{where}".split())
