"""One filer stage as a JSON-ready result: what `tesk filer` prints in a filer pod.

The result is one JSON object (printed as one line); `format` numbers its shape:

    {"format": 1, "stage": "inputs", "ok": true, "input_types": ["FILE", "DIRECTORY"],
     "sizes": [[1, 200], [2, 1000]]}
    {"format": 1, "stage": "outputs", "ok": true,
     "outputs": [{"url": "s3://b/out/a.txt", "path": "/data/out/a.txt", "size_bytes": "12"}],
     "errors": ["output /data/missing.txt: not found in the task volume"]}
    {"format": 1, "stage": "inputs", "ok": false, "error": "input /data/x (s3://b/x): not found"}

`ok` is false only when the stage failed as a whole (an input could not be staged, or the
filer itself broke); output files that could not be uploaded are `errors` of a finished stage.
`stage_result` turns such an object back into InputsStaged / OutputsStaged (or StageError).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

from tesk.config import FilerConfig
from tesk.engine.stages import InputsStaged, OutputsStaged, StageError
from tesk.filer.filer import Filer
from tesk.tes.models import FileType, OutputFileLog, Task

log = logging.getLogger(__name__)

FORMAT = 1
Direction = Literal["inputs", "outputs"]


def run_stage(
    direction: Direction,
    task: Task,
    volume_root: Path,
    config: FilerConfig,
    executors_failed: bool = False,
) -> dict[str, Any]:
    """Run one filer stage and describe its outcome as a JSON-ready dict.

    Failures of the stage become `ok: false` results; only a `direction` other than "inputs" or
    "outputs" raises (ValueError), as that is a mistake of the caller, not of the stage.
    """
    if direction not in ("inputs", "outputs"):
        raise ValueError(f"unknown filer stage {direction!r}: use 'inputs' or 'outputs'")
    result: dict[str, Any] = {"format": FORMAT, "stage": direction}
    try:
        filer = Filer(config)
        if direction == "inputs":
            staged_in = filer.stage_inputs(task, volume_root)
            result.update(
                ok=True,
                input_types=[t.value for t in staged_in.input_types],
                sizes=[list(size) for size in staged_in.sizes],
            )
        else:
            staged_out = filer.stage_outputs(task, volume_root, executors_failed)
            result.update(
                ok=True,
                outputs=[o.dump() for o in staged_out.outputs],
                errors=list(staged_out.errors),
            )
    except StageError as error:
        result.update(ok=False, error=str(error))
    except Exception as error:  # the caller reads this line instead of a traceback
        log.exception("filer stage %s failed", direction)
        result.update(ok=False, error=f"filer failed: {type(error).__name__}: {error}")
    return result


def stage_result(result: dict[str, Any]) -> InputsStaged | OutputsStaged:
    """The outcome a `run_stage` result describes; StageError if it failed or is malformed."""
    if not isinstance(result, dict) or result.get("format") != FORMAT:
        raise StageError(f"unreadable filer result (expected format {FORMAT}): {result!r:.200}")
    if not result.get("ok"):
        raise StageError(str(result.get("error") or "the filer stage failed"))
    try:
        if result["stage"] == "inputs":
            return InputsStaged(
                tuple(FileType(t) for t in result["input_types"]),
                tuple((int(files), int(size)) for files, size in result.get("sizes", [])),
            )
        if result["stage"] == "outputs":
            return OutputsStaged(
                outputs=tuple(OutputFileLog.model_validate(o) for o in result["outputs"]),
                errors=tuple(str(e) for e in result.get("errors", [])),
            )
    except (KeyError, TypeError, ValueError) as error:
        raise StageError(f"unreadable filer result: {error}") from error
    raise StageError(f"unreadable filer result: unknown stage {result.get('stage')!r}")
