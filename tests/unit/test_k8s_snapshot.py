"""Progress snapshots in status ConfigMaps: round trip, and they always fit."""

from __future__ import annotations

import pytest

from tesk.backends.kubernetes import snapshot
from tesk.tes.models import ExecutorLog, FileType, OutputFileLog, TaskLog
from tesk.tes.progress import Progress
from tesk.tes.states import State


def progress(stdout: str = "out", executors: int = 1) -> Progress:
    log = TaskLog(
        logs=[
            ExecutorLog(exit_code=0, stdout=stdout, stderr="err", start_time="2026-01-01T00:00:00Z")
            for _ in range(executors)
        ],
        outputs=[OutputFileLog(url="s3://b/o", path="/data/o", size_bytes="3")],
        system_logs=["note"],
    )
    return Progress(State.RUNNING, seq=4, log=log, input_types=(FileType.FILE, FileType.DIRECTORY))


def test_round_trip() -> None:
    original = progress()
    assert snapshot.decode(snapshot.encode(original)) == original


def test_oversized_snapshots_keep_the_ends_of_the_tails() -> None:
    big = progress(stdout="a" * 100_000 + "THE END", executors=30)
    text = snapshot.encode(big, max_bytes=200_000)
    assert len(text.encode()) <= 200_000
    decoded = snapshot.decode(text)
    assert decoded.log is not None
    assert all((e.stdout or "").endswith("THE END") for e in decoded.log.logs)
    assert snapshot.SHORTENED_NOTE in (decoded.log.system_logs or [])
    assert decoded.log.outputs == big.log.outputs  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "text", ["", "[]", '{"format": 2}', '{"format": 1, "state": "NOPE", "seq": 1}', "{"]
)
def test_unreadable_snapshots_are_refused(text: str) -> None:
    with pytest.raises(snapshot.SnapshotError):
        snapshot.decode(text)


def test_only_engine_snapshots_are_written() -> None:
    with pytest.raises(ValueError, match="sequence number"):
        snapshot.encode(Progress(State.CANCELED))
