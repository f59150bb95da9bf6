"""`tesk filer`: one filer stage in a filer pod; the last line printed is its JSON result.

The taskmaster reads that line from the pod log. Diagnostics go to stderr; the exit code is 0
when the stage worked (output files that could not be uploaded are listed in the result) and 1
when it failed.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, cast

from pydantic import ValidationError

from tesk.config import FilerConfig
from tesk.filer.stage import FORMAT, Direction, run_stage
from tesk.observability.logs import configure_logging, log_format
from tesk.tes.models import Task


def run(
    direction: str,
    task_file: Path,
    filer_config: Path | None,
    volume: Path,
    executors_failed: bool,
) -> int:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    configure_logging(log_format())
    try:
        task = Task.model_validate_json(task_file.read_text())
        config = (
            FilerConfig.model_validate_json(filer_config.read_text())
            if filer_config is not None
            else FilerConfig()
        )
    except (OSError, ValidationError) as exc:
        return _print({"format": FORMAT, "stage": direction, "ok": False, "error": str(exc)})
    # `tesk filer` lets only "inputs" and "outputs" through.
    stage = cast(Direction, direction)
    problem = unwritable_volume(volume) if stage == "inputs" and task.inputs else None
    if problem:
        return _print({"format": FORMAT, "stage": direction, "ok": False, "error": problem})
    return _print(run_stage(stage, task, volume, config, executors_failed))


def unwritable_volume(volume: Path) -> str | None:
    """Why this pod may not write the task volume's root, or None.

    The filer runs non-root and relies on the pod's fsGroup, which some volume drivers do not
    apply (ReadWriteMany volumes, volumes without an fsType): their root stays root's, mode 0755.
    """
    if os.access(volume, os.W_OK):
        return None
    info = volume.stat()
    return (
        f"the task volume is not writable by uid {os.getuid()} (groups "
        f"{sorted(os.getgroups())}): its root is owned by {info.st_uid}:{info.st_gid} with mode "
        f"{info.st_mode & 0o7777:04o}, so the storage class did not apply fsGroup "
        "(kubernetes.volume_fs_group); drivers skip it for ReadWriteMany volumes and volumes "
        "without an fsType. Use a storage class whose volumes apply fsGroup, or one whose volume "
        "root that user may write"
    )


def _print(result: dict[str, Any]) -> int:
    sys.stderr.flush()
    print(json.dumps(result, separators=(",", ":")), flush=True)
    return 0 if result.get("ok") else 1
