"""The Filer and run_stage over file:// and inline content (the other schemes: integration)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from tesk.config import FilerConfig
from tesk.engine.stages import InputsStaged, OutputsStaged, StageError
from tesk.filer import Filer, run_stage, stage_result
from tesk.tes.models import FileType, OutputFileLog, Task


def make_task(
    inputs: list[dict[str, Any]] | None = None, outputs: list[dict[str, Any]] | None = None
) -> Task:
    return Task.model_validate(
        {
            "executors": [{"image": "alpine", "command": ["true"]}],
            "inputs": inputs,
            "outputs": outputs,
        }
    )


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    root = tmp_path / "storage"
    (root / "in" / "dir" / "nested").mkdir(parents=True)
    (root / "in" / "one.txt").write_text("one")
    (root / "in" / "dir" / "x.txt").write_text("x")
    (root / "in" / "dir" / "nested" / "y.txt").write_text("yy")
    return root


@pytest.fixture
def volume(tmp_path: Path) -> Path:
    path = tmp_path / "volume"
    path.mkdir()
    return path


@pytest.fixture
def config(storage: Path) -> FilerConfig:
    return FilerConfig(file_roots=[storage])


@pytest.fixture
def filer(config: FilerConfig) -> Filer:
    return Filer(config)


def put(volume: Path, tes_path: str, text: str) -> None:
    path = volume / tes_path.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# Inputs -------------------------------------------------------------------------------------------


def test_inputs_are_staged_and_their_types_found(filer: Filer, storage: Path, volume: Path) -> None:
    task = make_task(
        inputs=[
            {"url": (storage / "in/one.txt").as_uri(), "path": "/data/one.txt"},
            {"url": (storage / "in/dir").as_uri(), "path": "/data/dir"},
            {"content": "inline ✓", "path": "/data/inline.txt", "url": "file:///ignored"},
            {"url": (storage / "in/dir").as_uri(), "path": "/typed", "type": "DIRECTORY"},
        ]
    )
    staged = filer.stage_inputs(task, volume)
    assert staged.input_types == (
        FileType.FILE,
        FileType.DIRECTORY,
        FileType.FILE,
        FileType.DIRECTORY,
    )
    assert (volume / "data/one.txt").read_text() == "one"
    assert (volume / "data/dir/nested/y.txt").read_text() == "yy"
    assert (volume / "data/inline.txt").read_text(encoding="utf-8") == "inline ✓"
    assert (volume / "typed/x.txt").read_text() == "x"


def test_a_missing_input_fails_the_stage_naming_the_url(
    filer: Filer, storage: Path, volume: Path
) -> None:
    url = (storage / "in/absent.txt").as_uri()
    with pytest.raises(StageError, match=f"input /data/a: {url}: not found"):
        filer.stage_inputs(make_task(inputs=[{"url": url, "path": "/data/a"}]), volume)


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"path": "/data/a"}, "neither url nor content"),
        ({"url": "gs://bucket/x", "path": "/data/a"}, "no transfer for gs://"),
        ({"url": "file:///etc/passwd", "path": "/data/a"}, "outside the allowed file roots"),
        ({"content": "x", "path": "/data/a", "type": "DIRECTORY"}, "type is DIRECTORY"),
    ],
)
def test_unusable_inputs_fail_the_stage(
    filer: Filer, volume: Path, item: dict[str, Any], message: str
) -> None:
    with pytest.raises(StageError, match=message):
        filer.stage_inputs(make_task(inputs=[item]), volume)


def test_a_file_input_typed_directory_is_an_error(
    filer: Filer, storage: Path, volume: Path
) -> None:
    url = (storage / "in/one.txt").as_uri()
    with pytest.raises(StageError, match="is a file, not a directory"):
        filer.stage_inputs(
            make_task(inputs=[{"url": url, "path": "/d", "type": "DIRECTORY"}]), volume
        )


# Outputs ------------------------------------------------------------------------------------------


def test_file_and_directory_outputs_are_uploaded_and_logged(
    filer: Filer, storage: Path, volume: Path
) -> None:
    put(volume, "/data/result.txt", "result")
    put(volume, "/data/tree/a.txt", "a")
    put(volume, "/data/tree/b/c.txt", "ccc")
    base = (storage / "out").as_uri()
    task = make_task(
        outputs=[
            {"url": f"{base}/result.txt", "path": "/data/result.txt"},
            {"url": f"{base}/tree", "path": "/data/tree", "type": "DIRECTORY"},
        ]
    )
    staged = filer.stage_outputs(task, volume, executors_failed=False)
    assert staged.errors == ()
    assert staged.outputs == (
        OutputFileLog(url=f"{base}/result.txt", path="/data/result.txt", size_bytes="6"),
        OutputFileLog(url=f"{base}/tree/a.txt", path="/data/tree/a.txt", size_bytes="1"),
        OutputFileLog(url=f"{base}/tree/b/c.txt", path="/data/tree/b/c.txt", size_bytes="3"),
    )
    assert (storage / "out/tree/b/c.txt").read_text() == "ccc"


def test_wildcard_outputs_strip_the_path_prefix(filer: Filer, storage: Path, volume: Path) -> None:
    put(volume, "/data/run/s1/report.txt", "r1")
    put(volume, "/data/run/s2/report.txt", "r22")
    put(volume, "/data/run/s2/other.log", "no")
    base = (storage / "reports").as_uri()
    task = make_task(
        outputs=[{"url": base, "path": "/data/run/*/report.txt", "path_prefix": "/data/run/"}]
    )
    staged = filer.stage_outputs(task, volume, executors_failed=False)
    assert staged.errors == ()
    assert [(o.url, o.path, o.size_bytes) for o in staged.outputs] == [
        (f"{base}/s1/report.txt", "/data/run/s1/report.txt", "2"),
        (f"{base}/s2/report.txt", "/data/run/s2/report.txt", "3"),
    ]
    assert not (storage / "reports/s2/other.log").exists()


def test_a_wildcard_matching_a_directory_uploads_the_directory(
    filer: Filer, storage: Path, volume: Path
) -> None:
    put(volume, "/data/sample_1/a.txt", "a")
    base = (storage / "o").as_uri()
    task = make_task(outputs=[{"url": base, "path": "/data/sample_*", "path_prefix": "/data"}])
    staged = filer.stage_outputs(task, volume, executors_failed=False)
    assert [o.url for o in staged.outputs] == [f"{base}/sample_1/a.txt"]


def test_a_wildcard_without_path_prefix_is_an_error_line(
    filer: Filer, storage: Path, volume: Path
) -> None:
    put(volume, "/data/a.txt", "a")
    task = make_task(outputs=[{"url": (storage / "o").as_uri(), "path": "/data/*.txt"}])
    staged = filer.stage_outputs(task, volume, executors_failed=False)
    assert staged.outputs == ()
    assert len(staged.errors) == 1
    assert "path_prefix is required" in staged.errors[0]


def test_missing_outputs_are_errors_unless_an_executor_failed(
    filer: Filer, storage: Path, volume: Path
) -> None:
    put(volume, "/data/present.txt", "here")
    base = (storage / "o").as_uri()
    task = make_task(
        outputs=[
            {"url": f"{base}/missing.txt", "path": "/data/missing.txt"},
            {"url": f"{base}/present.txt", "path": "/data/present.txt"},
        ]
    )
    staged = filer.stage_outputs(task, volume, executors_failed=False)
    assert staged.errors == ("output /data/missing.txt: not found in the task volume",)
    assert [o.path for o in staged.outputs] == ["/data/present.txt"]

    best_effort = filer.stage_outputs(task, volume, executors_failed=True)
    assert best_effort.errors == ()
    assert [o.path for o in best_effort.outputs] == ["/data/present.txt"]


def test_type_mismatches_are_error_lines(filer: Filer, storage: Path, volume: Path) -> None:
    put(volume, "/data/dir/a.txt", "a")
    put(volume, "/data/file.txt", "f")
    base = (storage / "o").as_uri()
    task = make_task(
        outputs=[
            {"url": f"{base}/1", "path": "/data/dir", "type": "FILE"},
            {"url": f"{base}/2", "path": "/data/file.txt", "type": "DIRECTORY"},
        ]
    )
    errors = filer.stage_outputs(task, volume, executors_failed=False).errors
    assert "is a directory, but the output's type is FILE" in errors[0]
    assert "is a file, but the output's type is DIRECTORY" in errors[1]


def test_outputs_linking_to_host_files_do_not_leak_them(
    filer: Filer, storage: Path, volume: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "host-secret"
    secret.write_text("host only")
    (volume / "data").mkdir()
    os.symlink(secret, volume / "data/steal.txt")
    os.symlink(tmp_path, volume / "data/steal-dir")
    base = (storage / "o").as_uri()
    task = make_task(
        outputs=[
            {"url": f"{base}/steal.txt", "path": "/data/steal.txt"},
            {"url": f"{base}/dir", "path": "/data/steal-dir", "type": "DIRECTORY"},
        ]
    )
    staged = filer.stage_outputs(task, volume, executors_failed=False)
    assert staged.outputs == ()
    assert len(staged.errors) == 2
    assert not (storage / "o").exists()


def test_links_inside_the_volume_resolve_as_in_the_container(
    filer: Filer, storage: Path, volume: Path
) -> None:
    put(volume, "/data/in/big.bam", "bam")
    (volume / "data/out").mkdir()
    os.symlink("/data/in/big.bam", volume / "data/out/result.bam")
    url = (storage / "o/result.bam").as_uri()
    task = make_task(outputs=[{"url": url, "path": "/data/out/result.bam"}])
    staged = filer.stage_outputs(task, volume, executors_failed=False)
    assert staged.errors == ()
    assert (storage / "o/result.bam").read_text() == "bam"


# run_stage ----------------------------------------------------------------------------------------


def test_run_stage_inputs_json(config: FilerConfig, storage: Path, volume: Path) -> None:
    task = make_task(
        inputs=[
            {"url": (storage / "in/dir").as_uri(), "path": "/d"},
            {"content": "c", "path": "/c"},
        ]
    )
    result = run_stage("inputs", task, volume, config)
    assert json.loads(json.dumps(result)) == {
        "format": 1,
        "stage": "inputs",
        "ok": True,
        "input_types": ["DIRECTORY", "FILE"],
        # The directory's two files (3 bytes) and the inline content (1 byte).
        "sizes": [[2, 3], [1, 1]],
    }
    assert stage_result(result) == InputsStaged(
        (FileType.DIRECTORY, FileType.FILE), ((2, 3), (1, 1))
    )


def test_run_stage_input_failure_json(config: FilerConfig, volume: Path) -> None:
    task = make_task(inputs=[{"url": "ftp://user:hunter2@127.0.0.1:1/x", "path": "/x"}])
    failing = config.model_copy(
        update={"retry": config.retry.model_copy(update={"attempts": 1, "timeout_s": 2})}
    )
    result = run_stage("inputs", task, volume, failing)
    assert result["ok"] is False
    assert result["stage"] == "inputs"
    assert "ftp://127.0.0.1:1/x" in result["error"]
    assert "hunter2" not in json.dumps(result)
    with pytest.raises(StageError, match=re.escape("ftp://127.0.0.1:1/x")):
        stage_result(result)


def test_run_stage_outputs_json(config: FilerConfig, storage: Path, volume: Path) -> None:
    put(volume, "/out/a.txt", "aaaa")
    url = (storage / "o/a.txt").as_uri()
    task = make_task(
        outputs=[
            {"url": url, "path": "/out/a.txt"},
            {"url": url + ".2", "path": "/out/none.txt"},
        ]
    )
    result = run_stage("outputs", task, volume, config, executors_failed=False)
    assert json.loads(json.dumps(result)) == {
        "format": 1,
        "stage": "outputs",
        "ok": True,
        "outputs": [{"url": url, "path": "/out/a.txt", "size_bytes": "4"}],
        "errors": ["output /out/none.txt: not found in the task volume"],
    }
    staged = stage_result(result)
    assert isinstance(staged, OutputsStaged)
    assert staged.outputs[0].size_bytes == "4"
    assert run_stage("outputs", task, volume, config, executors_failed=True)["errors"] == []


@pytest.mark.parametrize(
    "result",
    [
        {},
        {"format": 2, "ok": True},
        {"format": 1, "ok": True, "stage": "sideways"},
        {"format": 1, "ok": True, "stage": "inputs"},
    ],
)
def test_stage_result_refuses_malformed_results(result: dict[str, Any]) -> None:
    with pytest.raises(StageError, match="unreadable filer result"):
        stage_result(result)


def test_run_stage_refuses_an_unknown_direction(config: FilerConfig, volume: Path) -> None:
    with pytest.raises(ValueError, match="unknown filer stage"):
        run_stage("sideways", make_task(), volume, config)  # type: ignore[arg-type]


def test_filer_storage_lists_its_roots(filer: Filer, storage: Path) -> None:
    assert filer.storage()[0] == storage.as_uri()
