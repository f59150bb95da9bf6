"""The end of an executor's log file, read without loading the rest."""

from __future__ import annotations

import os
from pathlib import Path


def read_tail(path: Path, limit: int) -> str:
    """The last `limit` bytes of `path` as text (UTF-8, undecodable bytes replaced)."""
    if limit <= 0:
        return ""
    try:
        with path.open("rb") as stream:
            size = stream.seek(0, os.SEEK_END)
            stream.seek(max(0, size - limit))
            data = stream.read(limit)
    except FileNotFoundError:
        return ""
    if size > limit:
        # The cut may fall inside a multi-byte character: start at the next whole one.
        skip = 0
        while skip < min(3, len(data)) and 0x80 <= data[skip] <= 0xBF:
            skip += 1
        data = data[skip:]
    return data.decode("utf-8", errors="replace")
