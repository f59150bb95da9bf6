"""The local live output: the runtime's file, opened once, and never a file outside the task."""

from __future__ import annotations

import os
from pathlib import Path

from tesk.backends.local.layout import DataDir
from tesk.backends.local.output import FileOutput, output_path
from tesk.tes.models import Executor


def executor(**fields: str) -> Executor:
    return Executor.model_validate({"image": "alpine", "command": ["true"], **fields})


def test_the_file_is_where_the_runtime_writes_it(tmp_path: Path) -> None:
    task = DataDir(tmp_path).task("t1")
    assert output_path(task, 2, executor(), "stderr") == task.logs / "2.stderr"
    named = output_path(task, 0, executor(stdout="/outputs/out.txt"), "stdout")
    assert named == task.volume / "outputs" / "out.txt"


def test_an_open_file_stays_readable_after_the_task_directory_is_removed(tmp_path: Path) -> None:
    task = DataDir(tmp_path).task("t1")
    source = FileOutput(task.logs / "0.stdout", task.root)
    assert not source.available()
    assert (source.size(), source.read(0, 10)) == (0, b"")
    task.logs.mkdir(parents=True)
    (task.logs / "0.stdout").write_bytes(b"hello\n")
    assert source.available()
    assert (source.size(), source.read(2, 3)) == (6, b"llo")
    (task.logs / "0.stdout").unlink()
    task.logs.rmdir()
    assert source.read(0, 100) == b"hello\n"
    source.close()
    assert not (task.root / "logs").exists()


def test_links_fifos_and_files_outside_the_task_are_not_read(tmp_path: Path) -> None:
    task = DataDir(tmp_path / "data").task("t1")
    (task.volume / "outputs").mkdir(parents=True)
    secret = tmp_path / "secret"
    secret.write_text("host file")
    (task.volume / "outputs" / "link").symlink_to(secret)
    os.mkfifo(task.volume / "outputs" / "fifo")
    (task.volume / "escape").symlink_to(tmp_path)
    for path in (
        task.volume / "outputs" / "link",
        task.volume / "outputs" / "fifo",
        task.volume / "escape" / "secret",  # a linked directory on the way
    ):
        source = FileOutput(path, task.root)
        assert not source.available(), path
        assert source.read(0, 100) == b""
