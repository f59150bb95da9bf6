"""A Stager for the local runtime without the real filer: inline content and plain copies.

Inputs: `content`, or a `file://` URL / plain path that is copied (file or directory tree).
Outputs: the file or directory at `path` is copied to the `file://` URL; no wildcards.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urlparse

from tesk.engine.cancellation import Cancellation
from tesk.engine.stages import InputsStaged, OutputsStaged, StageError
from tesk.engine.volumes import host_path
from tesk.tes.models import FileType, OutputFileLog, Task


def _local(url: str) -> Path:
    parsed = urlparse(url)
    if parsed.scheme not in ("", "file"):
        raise StageError(f"the fake stager copies only file:// URLs, not {url}")
    return Path(parsed.path)


class FakeStager:
    def __init__(self) -> None:
        self.input_calls = 0
        self.output_calls: list[bool] = []

    def stage_inputs(self, task: Task, volume_root: Path, cancel: Cancellation) -> InputsStaged:
        self.input_calls += 1
        types: list[FileType] = []
        for item in task.inputs or []:
            dest = host_path(volume_root, item.path)
            dest.parent.mkdir(parents=True, exist_ok=True)
            if item.content is not None:
                dest.write_text(item.content)
                types.append(FileType.FILE)
                continue
            source = _local(item.url or "")
            if source.is_dir():
                shutil.copytree(source, dest, dirs_exist_ok=True)
                types.append(FileType.DIRECTORY)
            elif source.is_file():
                shutil.copyfile(source, dest)
                types.append(FileType.FILE)
            else:
                raise StageError(f"input {item.url} does not exist")
        return InputsStaged(tuple(types))

    def stage_outputs(
        self, task: Task, volume_root: Path, executors_failed: bool, cancel: Cancellation
    ) -> OutputsStaged:
        self.output_calls.append(executors_failed)
        logs: list[OutputFileLog] = []
        errors: list[str] = []
        for item in task.outputs or []:
            source = host_path(volume_root, item.path)
            dest = _local(item.url)
            if source.is_dir():
                shutil.copytree(source, dest, dirs_exist_ok=True)
                for found in sorted(p for p in source.rglob("*") if p.is_file()):
                    relative = found.relative_to(source)
                    logs.append(
                        OutputFileLog(
                            url=f"{item.url.rstrip('/')}/{relative}",
                            path=f"{item.path.rstrip('/')}/{relative}",
                            size_bytes=str(found.stat().st_size),
                        )
                    )
            elif source.is_file():
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, dest)
                logs.append(
                    OutputFileLog(
                        url=item.url, path=item.path, size_bytes=str(source.stat().st_size)
                    )
                )
            elif not executors_failed:
                errors.append(f"{item.path}: no such file in the task volume")
        return OutputsStaged(tuple(logs), tuple(errors))
