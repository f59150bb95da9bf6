"""Progress snapshots in status ConfigMaps: round trip, and they always fit."""

from __future__ import annotations

import pytest

from tesk.backends.kubernetes import names, snapshot
from tesk.tes.models import ExecutorLog, FileType, OutputFileLog, TaskLog
from tesk.tes.progress import AttemptFailure, Cause, Progress
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


def test_a_final_snapshot_with_more_output_files_than_fit_still_fits() -> None:
    # A DIRECTORY output of many files: every one of them is logged.
    files = [
        OutputFileLog(
            url=f"s3://results/run-1/sample-{i:05d}.vcf.gz", path=f"/out/{i}", size_bytes="9"
        )
        for i in range(20_000)
    ]
    final = Progress(State.COMPLETE, seq=9, log=TaskLog(outputs=files, system_logs=["note"]))
    text = snapshot.encode(final, max_bytes=200_000)
    assert len(text.encode()) <= 200_000
    decoded = snapshot.decode(text)
    assert decoded.state == State.COMPLETE
    assert decoded.log is not None
    kept = decoded.log.outputs
    assert 0 < len(kept) < len(files)
    assert kept == files[: len(kept)]
    notes = decoded.log.system_logs or []
    assert notes[0] == "note"
    assert f"only the first {len(kept)} of the 20000 uploaded output files are listed" in notes[1]


def test_a_snapshot_with_more_system_log_lines_than_fit_still_fits() -> None:
    lines = [f"output /data/out/{i}.txt: not found in the task volume" for i in range(20_000)]
    final = Progress(State.SYSTEM_ERROR, seq=9, log=TaskLog(system_logs=lines))
    text = snapshot.encode(final, max_bytes=200_000)
    assert len(text.encode()) <= 200_000
    decoded = snapshot.decode(text)
    assert decoded.state == State.SYSTEM_ERROR
    notes = (decoded.log.system_logs or []) if decoded.log else []
    assert notes[0] == lines[0]
    assert "system log lines were left out" in notes[-1]


@pytest.mark.parametrize(
    "text", ["", "[]", '{"format": 2}', '{"format": 1, "state": "NOPE", "seq": 1}', "{"]
)
def test_unreadable_snapshots_are_refused(text: str) -> None:
    with pytest.raises(snapshot.SnapshotError):
        snapshot.decode(text)


def test_only_engine_snapshots_are_written() -> None:
    with pytest.raises(ValueError, match="sequence number"):
        snapshot.encode(Progress(State.CANCELED))


def test_the_attempt_and_why_it_ended_travel_with_the_snapshot() -> None:
    failure = AttemptFailure(Cause.CAPACITY_LOST, "executor 0: TerminationByKubelet: evicted")
    progress = Progress(State.PREEMPTED, seq=4, log=TaskLog(), attempt=2, failure=failure)
    assert snapshot.decode(snapshot.encode(progress)) == progress


def test_a_snapshot_of_a_taskmaster_that_knew_no_attempts_names_none() -> None:
    text = '{"format":1,"seq":3,"state":"RUNNING","log":null,"input_types":null}'
    decoded = snapshot.decode(text)
    assert (decoded.attempt, decoded.failure) == (None, None)


def test_every_attempt_has_its_own_objects_and_the_first_keeps_the_old_names() -> None:
    task_id = "0f6f6c9e-1b2c-4d5e-8f90-0123456789ab"
    first, third = names.TaskNames(task_id), names.TaskNames(task_id, 3)
    assert first.job == f"tesk-{task_id}"
    assert third.job == f"tesk-{task_id}-a3"
    assert third.status_configmap == f"tesk-{task_id}-a3-status"
    assert third.volume != first.volume
    assert max(len(third.executor_pod(999)), len(third.filer_pod("outputs"))) <= 63
    labels = names.labels("tesk", names.COMPONENT_STATUS, task_id, 3)
    assert names.attempt_of(labels) == 3
    assert names.attempt_of({}) == 1
