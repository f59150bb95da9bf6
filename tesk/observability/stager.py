"""A wrapper of the filer's stages that records files, bytes and failures per URL scheme.

It wraps any Stager (the engine's stage contract, which tesk.filer.Filer implements)
and learns what was moved from the results, so the filer itself needs no metrics code: inputs
by the sizes the stager measured in the volume after staging each one, outputs by the
`size_bytes` the filer reports for every uploaded file.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlsplit

from tesk.engine.cancellation import Cancellation
from tesk.engine.stages import InputsStaged, OutputsStaged, StageError, Stager
from tesk.observability.recording import Recorder
from tesk.tes.models import Task

logger = logging.getLogger(__name__)

CONTENT = "content"
"""The scheme label of inputs given inline (`content`) rather than by URL."""


class ObservedStager:
    def __init__(self, inner: Stager, recorder: Recorder) -> None:
        self.inner = inner
        self._recorder = recorder

    def stage_inputs(self, task: Task, volume_root: Path, cancel: Cancellation) -> InputsStaged:
        try:
            staged = self.inner.stage_inputs(task, volume_root, cancel)
        except StageError:
            self._recorder.transfer_failed("inputs")
            raise
        try:
            self._record_inputs(task, staged)
        except Exception:
            logger.exception("task %s: measuring the staged inputs failed", task.id)
        return staged

    def stage_outputs(
        self, task: Task, volume_root: Path, executors_failed: bool, cancel: Cancellation
    ) -> OutputsStaged:
        try:
            staged = self.inner.stage_outputs(task, volume_root, executors_failed, cancel)
        except StageError:
            self._recorder.transfer_failed("outputs")
            raise
        totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for output in staged.outputs:
            total = totals[scheme_of(output.url)]
            total[0] += 1
            total[1] += output.size()
        for scheme, (files, size) in sorted(totals.items()):
            self._recorder.transferred("outputs", scheme, files, size)
        if staged.errors:
            self._recorder.transfer_failed("outputs", len(staged.errors))
        return staged

    def _record_inputs(self, task: Task, staged: InputsStaged) -> None:
        totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        # The stager measured what each input put into the volume.
        for item, (files, size) in zip(task.inputs or [], staged.sizes, strict=False):
            scheme = CONTENT if item.content is not None else scheme_of(item.url or "")
            total = totals[scheme]
            total[0] += files
            total[1] += size
        for scheme, (files, size) in sorted(totals.items()):
            self._recorder.transferred("inputs", scheme, files, size)


_SCHEMES = frozenset({"file", "http", "https", "ftp", "ftps", "s3", "gs", "az", "drs"})


def scheme_of(url: str) -> str:
    """The URL's scheme as a metric label: a known one, `file` for a bare path, else `other`."""
    scheme = urlsplit(url).scheme.lower()
    if not scheme:
        return "file"
    return scheme if scheme in _SCHEMES else "other"
