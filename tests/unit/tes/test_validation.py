"""The TES rules of tesk.tes.validation, one by one."""

from __future__ import annotations

import pytest

from tesk.tes.errors import InvalidRequest
from tesk.tes.models import Input, Output, Task, View
from tesk.tes.states import State
from tesk.tes.validation import (
    Mount,
    TaskLimits,
    check_input,
    check_output,
    check_path,
    check_task,
    parse_page_size,
    parse_state,
    parse_task,
    parse_view,
    split_backend_parameters,
    tag_filter,
)

LIMITS = TaskLimits(max_executors=3, max_inputs=3, max_outputs=3, max_tags=3)


@pytest.mark.parametrize(
    "path", ["/data/x", "/data/x/", "/data//x", "/data/./x", "/vol/A/", "/a/b/c.txt"]
)
def test_good_paths(path: str) -> None:
    check_path(path, "p")


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("data/x", "not an absolute path"),
        ("", "not an absolute path"),
        ("/", "directly under '/'"),
        ("//", "directly under '/'"),
        ("/x", "directly under '/'"),
        ("/./x", "directly under '/'"),
        ("/data/../x", "'..'"),
        ("/data/..", "'..'"),
        ("/data/x\0y", "NUL"),
    ],
)
def test_bad_paths(path: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message) as caught:
        check_path(path, "inputs[1].path")
    assert str(caught.value).startswith("inputs[1].path: ")


@pytest.mark.parametrize(
    ("path", "mount", "ok"),
    [
        ("/tmp", Mount.NONE, True),  # a working directory is not mounted (Snakemake uses /tmp)
        ("/", Mount.NONE, True),
        ("/data", Mount.DIRECTORY, True),  # a volume or a DIRECTORY input is mounted itself
        ("/", Mount.DIRECTORY, False),
        ("/data/x", Mount.PARENT, True),  # a file: its directory is mounted
        ("/data", Mount.PARENT, False),
        ("tmp", Mount.NONE, False),
        ("/tmp/../etc", Mount.NONE, False),
    ],
)
def test_what_is_mounted_decides_how_deep_a_path_must_be(path: str, mount: Mount, ok: bool) -> None:
    if ok:
        check_path(path, "p", mount)
    else:
        with pytest.raises(InvalidRequest):
            check_path(path, "p", mount)


def test_input_paths_by_type() -> None:
    check_input(Input(path="/data", url="s3://b/dir/", type="DIRECTORY"), "i")
    for kind in ("FILE", None):
        with pytest.raises(InvalidRequest, match="directly under '/'"):
            check_input(Input(path="/data", url="s3://b/k", type=kind), "i")
    with pytest.raises(InvalidRequest, match="content' makes a file"):
        check_input(Input(path="/data/d", content="x", type="DIRECTORY"), "i")


def test_executor_paths() -> None:
    executor = {"image": "a", "command": ["x"], "workdir": "/tmp", "stdin": "/in"}
    check_task(parse_task({"executors": [executor]}), LIMITS)
    for name, value in (("stdout", "/out.txt"), ("stderr", "/"), ("stdin", "/"), ("workdir", "w")):
        bad = {**executor, name: value}
        with pytest.raises(InvalidRequest, match=rf"executors\[0\]\.{name}"):
            check_task(parse_task({"executors": [bad]}), LIMITS)


def test_input_needs_url_or_content() -> None:
    check_input(Input(path="/data/a", url="s3://b/k"), "i")
    check_input(Input(path="/data/a", content="x"), "i")
    check_input(Input(path="/data/a", content=""), "i")  # an empty file
    with pytest.raises(InvalidRequest, match="needs a 'url' or a 'content'"):
        check_input(Input(path="/data/a"), "i")
    with pytest.raises(InvalidRequest, match="needs a 'url' or a 'content'"):
        check_input(Input(path="/data/a", url=""), "i")


def test_output_wildcards_need_a_matching_prefix() -> None:
    check_output(Output(url="s3://b/", path="/data/*.txt", path_prefix="/data/"), "o")
    check_output(Output(url="s3://b/", path="/data/run[0-9]/x", path_prefix="/data"), "o")
    check_output(Output(url="s3://b/x", path="/data/x"), "o")
    for glob in ("/data/*.txt", "/data/?.txt", "/data/[ab].txt"):
        with pytest.raises(InvalidRequest, match="path_prefix: required"):
            check_output(Output(url="s3://b/", path=glob), "o")
    for root_glob in ("/*.txt", "/da*/x"):
        with pytest.raises(InvalidRequest, match="wildcard directly under '/'"):
            check_output(Output(url="s3://b/", path=root_glob, path_prefix="/"), "o")
    check_output(Output(url="s3://b/", path="/data", type="DIRECTORY"), "o")
    with pytest.raises(InvalidRequest, match="directly under '/'"):
        check_output(Output(url="s3://b/", path="/data"), "o")
    with pytest.raises(InvalidRequest, match="does not start with"):
        check_output(Output(url="s3://b/", path="/data/*.txt", path_prefix="/out/"), "o")


def test_limits() -> None:
    executor = {"image": "a", "command": ["x"]}
    check_task(
        parse_task({"executors": [executor] * 3, "tags": {"a": "", "b": "", "c": ""}}), LIMITS
    )
    with pytest.raises(InvalidRequest, match="at most 3 executors, this one has 4"):
        check_task(parse_task({"executors": [executor] * 4}), LIMITS)
    with pytest.raises(InvalidRequest, match="at most 3 tags"):
        check_task(parse_task({"executors": [executor], "tags": dict.fromkeys("abcd", "")}), LIMITS)


def test_parse_task_names_every_bad_field() -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_task({"executors": [{"image": "a", "command": []}, {"command": ["x"]}]})
    message = str(caught.value)
    assert "executors[0].command:" in message
    assert "executors[1].image:" in message


def test_backend_parameters_are_case_insensitive() -> None:
    kept, unsupported = split_backend_parameters(
        {"Namespace": "lab", "VmSize": "big", "QUEUE": "q"}, ["namespace", "Queue"]
    )
    assert kept == {"namespace": "lab", "queue": "q"}
    assert unsupported == ["VmSize"]
    with pytest.raises(InvalidRequest, match="'a' and 'A' are the same key"):
        split_backend_parameters({"a": "1", "A": "1"}, [])


def test_query_parameters() -> None:
    assert parse_view(None) is View.MINIMAL
    assert parse_view("FULL") is View.FULL
    with pytest.raises(InvalidRequest, match="view"):
        parse_view("full")
    assert parse_state(None) is None
    assert parse_state("CANCELING") is State.CANCELING
    with pytest.raises(InvalidRequest, match="state"):
        parse_state("DONE")
    assert parse_page_size(None) == 256
    assert parse_page_size(1) == 1
    assert parse_page_size(2047) == 2047
    for bad in (0, -1, 2048):
        with pytest.raises(InvalidRequest, match="between 1 and 2047"):
            parse_page_size(bad)


def test_tag_filter_zips_by_index() -> None:
    assert tag_filter([], []) == []
    assert tag_filter(["a", "b", "c"], ["1", ""]) == [("a", "1"), ("b", None), ("c", None)]
    with pytest.raises(InvalidRequest, match="2 values given for 1 tag_key"):
        tag_filter(["a"], ["1", "2"])


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ({"cpu_cores": 0}, r"resources\.cpu_cores: must be at least 1, not 0"),
        ({"cpu_cores": -2}, r"resources\.cpu_cores: must be at least 1, not -2"),
        ({"ram_gb": -4}, r"resources\.ram_gb: must be a finite number above 0, not -4"),
        ({"ram_gb": 0}, r"resources\.ram_gb: must be a finite number above 0"),
        ({"disk_gb": -1}, r"resources\.disk_gb: must be a finite number above 0"),
        (
            {"disk_gb": float("inf")},
            r"resources\.disk_gb: must be a finite number above 0, not inf",
        ),
        ({"ram_gb": float("nan")}, r"resources\.ram_gb: must be a finite number above 0, not nan"),
    ],
)
def test_resources_no_backend_can_give_are_refused(
    resources: dict[str, float], message: str
) -> None:
    task = Task.model_validate(
        {"executors": [{"image": "busybox", "command": ["true"]}], "resources": resources}
    )
    with pytest.raises(InvalidRequest, match=message):
        check_task(task, LIMITS)


def test_sensible_resources_are_taken() -> None:
    task = Task.model_validate(
        {
            "executors": [{"image": "busybox", "command": ["true"]}],
            "resources": {"cpu_cores": 1, "ram_gb": 0.05, "disk_gb": 0.25},
        }
    )
    check_task(task, LIMITS)
