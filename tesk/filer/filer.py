"""The filer: stages a task's inputs into its volume and its outputs out of it."""

from __future__ import annotations

import logging
import posixpath
from dataclasses import dataclass, field
from pathlib import Path

from tesk.config import FilerConfig
from tesk.engine.cancellation import Cancellation
from tesk.engine.stages import InputsStaged, OutputsStaged, StageError
from tesk.filer.base import PartialUploadError, Transfer, TransferError
from tesk.filer.localfs import measure, partial_file
from tesk.filer.router import Router, storage_locations
from tesk.filer.urls import join_url, redact
from tesk.filer.volume import expand_glob, files_below, resolve, tes_join
from tesk.tes.models import FileType, Input, Output, OutputFileLog, Task
from tesk.tes.validation import has_glob

log = logging.getLogger(__name__)


class _Missing(Exception):
    """An output path the executors did not create."""


@dataclass
class _Uploads:
    files: list[OutputFileLog] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class Filer:
    """Moves a task's files between storage (by URL) and its volume (by TES path).

    A TES path P lives in the volume at the same relative path (`/data/x` is `<volume>/data/x`);
    symlinks left by executors are resolved inside the volume, never on the host. It implements
    the engine's Stager contract; `cancel` may be left out where nothing cancels a stage but the
    end of the process (a filer pod).
    """

    def __init__(self, config: FilerConfig) -> None:
        self.config = config

    def storage(self) -> list[str]:
        return storage_locations(self.config)

    # Inputs --------------------------------------------------------------------------------------

    def stage_inputs(
        self, task: Task, volume_root: Path, cancel: Cancellation | None = None
    ) -> InputsStaged:
        """Put every input in place; the type of each, in order. Raises StageError (Cancelled
        once cancelled)."""
        cancel = cancel or Cancellation()
        router = Router(self.config, cancel)
        types: list[FileType] = []
        sizes: list[tuple[int, int]] = []
        for item in task.inputs or []:
            types.append(self._stage_input(router, cancel, item, volume_root))
            sizes.append(measure(resolve(volume_root, item.path)))
        return InputsStaged(input_types=tuple(types), sizes=tuple(sizes))

    def _stage_input(
        self, router: Router, cancel: Cancellation, item: Input, volume_root: Path
    ) -> FileType:
        source = "inline content" if item.content is not None else redact(item.url or "")
        try:
            cancel.check()
            dest = resolve(volume_root, item.path)
            if item.content is not None:  # inline content wins over a URL
                if item.type == FileType.DIRECTORY:
                    raise TransferError("inline content makes a file, but the type is DIRECTORY")
                with partial_file(dest) as temporary:
                    temporary.write_text(item.content, encoding="utf-8")
                return FileType.FILE
            if not item.url:
                raise TransferError("neither url nor content is given")
            transfer = router.transfer_for(item.url, for_output=False)
            kind = item.type or (
                FileType.DIRECTORY if transfer.is_directory(item.url) else FileType.FILE
            )
            if kind == FileType.DIRECTORY:
                transfer.download_directory(item.url, dest)
            else:
                transfer.download_file(item.url, dest)
        except (TransferError, OSError, ValueError) as error:
            raise StageError(_line(f"input {item.path}", source, error)) from error
        log.info("staged input %s (%s) from %s", item.path, kind.value, source)
        return kind

    # Outputs -------------------------------------------------------------------------------------

    def stage_outputs(
        self,
        task: Task,
        volume_root: Path,
        executors_failed: bool,
        cancel: Cancellation | None = None,
    ) -> OutputsStaged:
        """Upload every output; what was uploaded and, one line each, what could not be.

        After an executor failed (`executors_failed`) this is best effort: an output the
        executors did not create is skipped silently; otherwise it is an error line.
        """
        cancel = cancel or Cancellation()
        router = Router(self.config, cancel)
        uploads = _Uploads()
        for output in task.outputs or []:
            try:
                self._stage_output(router, cancel, output, volume_root, uploads)
            except _Missing:
                if not executors_failed:
                    uploads.errors.append(f"output {output.path}: not found in the task volume")
            except (TransferError, OSError, ValueError) as error:
                uploads.errors.append(_line(f"output {output.path}", redact(output.url), error))
        for line in uploads.errors:
            log.warning("%s", line)
        return OutputsStaged(outputs=tuple(uploads.files), errors=tuple(uploads.errors))

    def _stage_output(
        self,
        router: Router,
        cancel: Cancellation,
        output: Output,
        volume_root: Path,
        uploads: _Uploads,
    ) -> None:
        transfer = router.transfer_for(output.url, for_output=True)
        if not has_glob(output.path):
            path = posixpath.normpath(output.path)
            self._upload(cancel, transfer, volume_root, path, output.url, output.type, uploads)
            return
        if output.path_prefix is None:
            raise ValueError("the path has wildcards, so path_prefix is required")
        for match in expand_glob(volume_root, output.path):
            if not match.startswith(output.path_prefix):
                uploads.errors.append(
                    f"output {output.path}: match {match} does not start with path_prefix "
                    f"{output.path_prefix!r}"
                )
                continue
            url = join_url(output.url, match[len(output.path_prefix) :])
            try:
                self._upload(cancel, transfer, volume_root, match, url, None, uploads)
            except (TransferError, OSError, ValueError) as error:
                uploads.errors.append(_line(f"output {match}", redact(url), error))

    def _upload(
        self,
        cancel: Cancellation,
        transfer: Transfer,
        volume_root: Path,
        tes_path: str,
        url: str,
        kind: FileType | None,
        uploads: _Uploads,
    ) -> None:
        cancel.check()
        local = resolve(volume_root, tes_path)
        if local.is_dir():
            if kind == FileType.FILE:
                raise ValueError("is a directory, but the output's type is FILE")
            files = files_below(volume_root, tes_path)
            try:
                done = transfer.upload_directory(local, url, files)
            except PartialUploadError as error:
                uploads.files.extend(_logs(error.uploaded, files, tes_path))
                raise
            uploads.files.extend(_logs(done, files, tes_path))
        elif local.is_file():
            if kind == FileType.DIRECTORY:
                raise ValueError("is a file, but the output's type is DIRECTORY")
            transfer.upload_file(local, url)
            uploads.files.append(_log(url, tes_path, local))
        else:
            raise _Missing(tes_path)
        log.info("staged output %s to %s", tes_path, redact(url))


def _log(url: str, tes_path: str, local: Path) -> OutputFileLog:
    return OutputFileLog(url=redact(url), path=tes_path, size_bytes=str(local.stat().st_size))


def _logs(
    uploaded: list[tuple[str, Path]], files: list[tuple[str, Path]], tes_dir: str
) -> list[OutputFileLog]:
    # upload_directory reports the files it sent in the order it was given them.
    return [
        _log(url, tes_join(tes_dir, relative), local)
        for (url, local), (relative, _) in zip(uploaded, files, strict=False)
    ]


def _line(what: str, url: str, error: BaseException) -> str:
    """One message naming the item, its URL (without credentials) and the reason."""
    if isinstance(error, OSError) and error.strerror:
        where = f" ({error.filename})" if error.filename else ""
        reason = f"{error.strerror.lower()}{where}"
    else:
        reason = str(error)
    if url and url in reason:  # transfer errors name the URL themselves
        return f"{what}: {reason}"
    return f"{what} ({url}): {reason}" if url else f"{what}: {reason}"
