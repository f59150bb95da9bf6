"""Task documents of the client: JSON/YAML files and the `tesk run` shortcut."""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import pytest

from tesk.client.taskdoc import (
    build_task,
    parse_input,
    parse_output,
    parse_tag,
    parse_tag_filter,
    parse_task,
    wildcard_prefix,
)

TASK = {"name": "x", "executors": [{"image": "alpine", "command": ["echo", "hi"]}]}


def test_json_and_yaml_give_the_same_task() -> None:
    yaml_text = "name: x\nexecutors:\n  - image: alpine\n    command: [echo, hi]\n"
    json_text = '{"name": "x", "executors": [{"image": "alpine", "command": ["echo", "hi"]}]}'
    assert parse_task(yaml_text, "t.yaml") == TASK
    assert parse_task(json_text, "t.json") == TASK


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "t: empty; expected a TES task as JSON or YAML"),
        ("  \n", "t: empty"),
        ('{"name": "x",', "t: not valid JSON: Expecting property name enclosed in double quotes"),
        ("name: [x\nexecutors: 1\n", "t: not valid YAML: "),
        ("- a\n- b\n", "t: a task is a JSON/YAML object (mapping), not list"),
        ("42", "t: a task is a JSON/YAML object (mapping), not int"),
    ],
)
def test_unreadable_task_documents_say_why(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="^" + _escape(message)):
        parse_task(text, "t")


def test_yaml_errors_name_the_line() -> None:
    with pytest.raises(ValueError, match=r"that cannot start any token \(line 2, column 1\)$"):
        parse_task("name: x\n\texecutors: []\n", "t.yaml")


def test_run_builds_a_one_executor_task(tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text("echo hällo\n", encoding="utf-8")
    task = build_task(
        "python:3.12",
        ["sh", "/data/script.sh"],
        inputs=[f"/data/script.sh=@{script}", "/data/ref=s3://bucket/ref.fa"],
        outputs=["/data/out.txt=s3://bucket/out.txt", "/data/res/*.csv=s3://bucket/res/"],
        cpu=2,
        ram_gb=1.5,
        disk_gb=10,
        tags=["project=p1", "flag"],
        name="job",
        workdir="/data",
        env=["A=1", "B=x=y", "EMPTY="],
    )
    assert task == {
        "name": "job",
        "executors": [
            {
                "image": "python:3.12",
                "command": ["sh", "/data/script.sh"],
                "workdir": "/data",
                "env": {"A": "1", "B": "x=y", "EMPTY": ""},
            }
        ],
        "inputs": [
            {"path": "/data/script.sh", "content": "echo hällo\n"},
            {"path": "/data/ref", "url": "s3://bucket/ref.fa"},
        ],
        "outputs": [
            {"path": "/data/out.txt", "url": "s3://bucket/out.txt"},
            {"path": "/data/res/*.csv", "url": "s3://bucket/res/", "path_prefix": "/data/res/"},
        ],
        "resources": {"cpu_cores": 2, "ram_gb": 1.5, "disk_gb": 10},
        "tags": {"project": "p1", "flag": ""},
    }


def test_run_without_options_sends_only_the_executor() -> None:
    assert build_task("alpine", ["true"]) == {
        "executors": [{"image": "alpine", "command": ["true"]}]
    }


def test_inline_content_from_standard_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"from stdin\n")))
    assert parse_input("/data/in=@-") == {"path": "/data/in", "content": "from stdin\n"}


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("/data/in", "expected PATH=URL or PATH=@FILE"),
        ("=s3://b/k", "expected PATH=URL or PATH=@FILE"),
        ("/data/in=", "expected PATH=URL or PATH=@FILE"),
        ("data/in=s3://b/k", "'data/in' is not an absolute path in the container"),
        ("/data/in=./local.txt", "is neither a URL (scheme://...) nor @FILE"),
        ("/data/in=@/no/such/file", "cannot read /no/such/file: No such file or directory"),
    ],
)
def test_bad_inputs_are_refused(item: str, message: str) -> None:
    with pytest.raises(ValueError, match=_escape(message)):
        parse_input(item)


def test_binary_content_is_refused(tmp_path: Path) -> None:
    blob = tmp_path / "blob"
    blob.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ValueError, match="is not UTF-8 text"):
        parse_input(f"/data/b=@{blob}")


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("/data/out", "expected PATH=URL"),
        ("out=s3://b/k", "is not an absolute path"),
        ("/data/out=bucket/key", "'bucket/key' is not a URL"),
    ],
)
def test_bad_outputs_are_refused(item: str, message: str) -> None:
    with pytest.raises(ValueError, match=_escape(message)):
        parse_output(item)


@pytest.mark.parametrize(
    ("path", "prefix"),
    [
        ("/data/*.txt", "/data/"),
        ("/data/run-?/out/*.bam", "/data/"),
        ("/data/a/b/[0-9].txt", "/data/a/b/"),
        ("/*", "/"),
    ],
)
def test_wildcard_outputs_strip_the_directories_before_the_wildcard(path: str, prefix: str) -> None:
    assert wildcard_prefix(path) == prefix


def test_tags_and_tag_filters() -> None:
    assert parse_tag("k=v=w") == ("k", "v=w")
    assert parse_tag("k") == ("k", "")
    assert parse_tag_filter("k=v") == ("k", "v")
    assert parse_tag_filter("k=") == ("k", "")
    assert parse_tag_filter("k") == ("k", None)
    with pytest.raises(ValueError, match="the key must not be empty"):
        parse_tag("=v")
    with pytest.raises(ValueError, match="expected KEY or KEY=VALUE"):
        parse_tag_filter("=v")


def test_run_needs_an_image_and_a_command() -> None:
    with pytest.raises(ValueError, match="IMAGE must not be empty"):
        build_task("", ["true"])
    with pytest.raises(ValueError, match="no command given"):
        build_task("alpine", [])
    with pytest.raises(ValueError, match="--env 'NOVALUE': expected NAME=VALUE"):
        build_task("alpine", ["true"], env=["NOVALUE"])


def _escape(text: str) -> str:
    return re.escape(text)
