"""The task volume layout: which directories are shared, and where TES paths live on the host."""

from __future__ import annotations

from pathlib import Path

import pytest

from tesk.engine.volumes import host_path, mount_points
from tesk.tes.models import Executor, FileType, Input, Output, Task
from tesk.tes.validation import has_glob


def task(**fields: object) -> Task:
    executors = fields.pop("executors", [Executor(image="a", command=["true"])])
    return Task(executors=executors, **fields)  # type: ignore[arg-type]


def test_a_file_input_shares_its_directory() -> None:
    assert mount_points(task(inputs=[Input(path="/data/in/a.txt", content="x")])) == ["/data/in"]


def test_a_directory_input_is_shared_itself() -> None:
    inputs = [Input(path="/data/ref", url="s3://b/ref/", type=FileType.DIRECTORY)]
    assert mount_points(task(inputs=inputs)) == ["/data/ref"]


def test_wildcard_outputs_share_the_directory_before_the_first_wildcard() -> None:
    outputs = [
        Output(path="/out/run*/result-?.txt", url="s3://b/"),
        Output(path="/logs/[ab]/x", url="s3://b/l", type=FileType.DIRECTORY),
    ]
    assert mount_points(task(outputs=outputs)) == ["/logs", "/out"]


def test_volumes_and_executor_streams_are_shared() -> None:
    executors = [
        Executor(image="a", command=["x"], stdout="/std/out/1.txt", stderr="/std/err/1.txt")
    ]
    points = mount_points(task(volumes=["/scratch/"], executors=executors))
    assert points == ["/scratch", "/std/err", "/std/out"]


def test_nested_directories_collapse_into_the_outermost() -> None:
    inputs = [
        Input(path="/data/a/b/c.txt", content="x"),
        Input(path="/data/a/d.txt", content="y"),
        Input(path="/database/e.txt", content="z"),  # a sibling, not a child, of /data
    ]
    points = mount_points(task(inputs=inputs, volumes=["/data"]))
    assert points == ["/data", "/database"]


def test_paths_are_normalised() -> None:
    inputs = [Input(path="/data//x/../in.txt", content="x")]
    assert mount_points(task(inputs=inputs)) == ["/data"]


def test_a_file_at_the_root_needs_the_root() -> None:
    # Runtimes refuse to mount the volume at / with a clear message; the layout states the need.
    assert mount_points(task(inputs=[Input(path="/in.txt", content="x")])) == ["/"]


def test_no_files_no_mounts() -> None:
    assert mount_points(task()) == []


def test_host_path_mirrors_the_tes_path(tmp_path: Path) -> None:
    assert host_path(tmp_path, "/data/in/a.txt") == tmp_path / "data" / "in" / "a.txt"
    assert host_path(tmp_path, "/data/../etc/x") == tmp_path / "etc" / "x"
    assert host_path(tmp_path, "/") == tmp_path


def test_host_path_refuses_to_leave_the_volume(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="leaves the task volume"):
        host_path(tmp_path, "../outside")


@pytest.mark.parametrize(
    ("path", "expected"),
    [("/a/*.txt", True), ("/a/?", True), ("/a/[xy]", True), ("/a/b.txt", False)],
)
def test_has_glob(path: str, expected: bool) -> None:
    assert has_glob(path) is expected
