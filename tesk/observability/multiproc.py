"""The directory `tesk serve` and its API workers share for multiprocess metrics.

No prometheus_client import here: this runs before it may be imported (see prometheus.py).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

ENV_MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    return os.environ.get(ENV_MULTIPROC_DIR) or None


def prepare_multiprocess_dir(data_dir: Path, pid: int | None = None) -> Path:
    """Create `<data_dir>/metrics/<pid>` for this `tesk serve` and its workers, and export it.

    Directories of `tesk serve` processes that no longer run are removed (their counters ended
    with them), so each serving process starts from zero like any restarted Prometheus target.
    """
    pid = os.getpid() if pid is None else pid
    base = data_dir.expanduser().absolute() / "metrics"
    base.mkdir(parents=True, exist_ok=True)
    for old in base.iterdir():
        if old.name.isdigit() and (int(old.name) == pid or not _alive(int(old.name))):
            shutil.rmtree(old, ignore_errors=True)
    path = base / str(pid)
    path.mkdir()
    os.environ[ENV_MULTIPROC_DIR] = str(path)
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
