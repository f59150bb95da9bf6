"""The local backend end to end: store, runner, engine and the bwrap runtime, with real processes.

The memory store stands in for SQL (same semantics, checked by the store contract suite) and the
fake stager for the filer; executors really run in bwrap sandboxes.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Collection, Iterator
from pathlib import Path

import pytest

from tesk.backends.base import BackendError
from tesk.backends.local import LocalBackend, LocalRunner
from tesk.backends.local.runner import STOPPED_REASON
from tesk.backends.local.serving import data_dir_of, runner_id
from tesk.config import CustomConfig, LimitsConfig, LocalConfig, RetriesConfig
from tesk.store.base import TaskRecord
from tesk.tes.models import Executor, FileType, Input, Output, Resources, Task, TaskLog, timestamp
from tesk.tes.progress import Progress
from tesk.tes.states import ACTIVE, TERMINAL, State
from tests.fakes.fake_stager import FakeStager
from tests.fakes.memory_store import MemoryStore

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bwrap not installed")

PODMAN_IMAGE = os.environ.get("TESK_TEST_PODMAN_IMAGE")


def processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def eventually(condition: object, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.02)
    return False


class Harness:
    def __init__(self, data_root: Path, tmp_path: Path) -> None:
        self.data_root = data_root
        self.tmp_path = tmp_path
        self.store = MemoryStore()
        self.backends: list[LocalBackend] = []

    max_attempts = 3

    def config(self, **local: object) -> CustomConfig:
        settings: dict[str, object] = {"runtime": "bwrap", **local}
        return CustomConfig(
            data_dir=self.data_root,
            local=LocalConfig(**settings),  # type: ignore[arg-type]
            retries=RetriesConfig(max_attempts=self.max_attempts),
        )

    def backend(self, *, start: bool = True, poll: float = 1.0, **local: object) -> LocalBackend:
        """The serving process's backend, holding the runner (started unless `start` is False)."""
        runner = LocalRunner(
            self.config(**local),
            self.store,
            stager=FakeStager(),
            stop_grace_s=0.5,
            poll_interval_s=poll,
        )
        backend = LocalBackend.serving(runner, self.store)
        if start:
            backend.start()
            self.backends.append(backend)
        return backend

    def api_backend(self) -> LocalBackend:
        """An API process's backend: it reaches the runner by datagram only."""
        return LocalBackend.for_api(self.config(), self.store)

    @property
    def runner_id(self) -> str:
        return runner_id(data_dir_of(self.config()))

    def record(self, *scripts: str, log: TaskLog | None = None, **fields: object) -> TaskRecord:
        task_id = f"task-{uuid.uuid4().hex[:12]}"
        task = Task(
            id=task_id,
            creation_time=timestamp(),
            executors=[Executor(image="busybox", command=["sh", "-c", s]) for s in scripts],
            **fields,  # type: ignore[arg-type]
        )
        return TaskRecord(
            id=task_id, state=State.QUEUED, created_us=time.time_ns() // 1000, task=task, log=log
        )

    def submit(self, backend: LocalBackend, *scripts: str, **fields: object) -> str:
        record = self.record(*scripts, **fields)
        self.store.create(record)
        backend.submit(record)
        return record.id

    def wait(self, task_id: str, states: Collection[State], timeout: float = 30.0) -> TaskRecord:
        assert eventually(lambda: self.state(task_id) in states, timeout), (
            f"task {task_id} is {self.state(task_id)}, not in {sorted(states)}"
        )
        record = self.store.get(task_id)
        assert record is not None
        return record

    def state(self, task_id: str) -> State | None:
        record = self.store.get(task_id)
        return record.state if record else None

    def cancel(self, backend: LocalBackend, task_id: str) -> None:
        """What the service does: store CANCELING with compare-and-set, then tell the backend."""
        record = self.store.get(task_id)
        assert record is not None
        if self.store.update(task_id, Progress(State.CANCELING), expected=ACTIVE) is not None:
            backend.cancel(task_id, record.state)


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    # Not under /tmp, which every sandbox replaces with its own.
    data_root = Path(tempfile.mkdtemp(prefix="tesk-local-test-", dir="/var/tmp"))
    harness = Harness(data_root, tmp_path)
    yield harness
    for backend in harness.backends:
        backend.stop()
    shutil.rmtree(data_root, ignore_errors=True)


def test_a_task_runs_to_complete_with_logs_and_outputs(harness: Harness) -> None:
    backend = harness.backend()
    out = harness.tmp_path / "result.txt"
    task_id = harness.submit(
        backend,
        "tr a-z A-Z < /data/in.txt > /data/out.txt; echo done",
        "cat /data/out.txt >&2",
        inputs=[Input(path="/data/in.txt", content="hello\n")],
        outputs=[Output(path="/data/out.txt", url=out.as_uri())],
    )
    record = harness.wait(task_id, TERMINAL)

    assert record.state == State.COMPLETE
    assert record.worker == harness.runner_id
    assert out.read_text() == "HELLO\n"
    log = record.log
    assert log is not None
    assert log.start_time
    assert log.end_time
    assert [(e.exit_code, e.stdout, e.stderr) for e in log.logs] == [
        (0, "done\n", ""),
        (0, "", "HELLO\n"),
    ]
    assert [(o.path, o.size_bytes) for o in log.outputs] == [("/data/out.txt", "6")]
    assert any("ignores container images" in line for line in log.system_logs or [])
    assert record.seq >= 4
    assert not harness.data_root.joinpath("tasks", task_id).exists()


def test_warnings_from_create_are_kept(harness: Harness) -> None:
    backend = harness.backend()
    record = harness.record("exit 2", log=TaskLog(system_logs=["backend parameter x ignored"]))
    harness.store.create(record)
    backend.submit(record)
    done = harness.wait(record.id, TERMINAL)
    assert done.state == State.EXECUTOR_ERROR
    assert done.log is not None
    assert done.log.system_logs is not None
    assert done.log.system_logs[0] == "backend parameter x ignored"
    assert "executor 0 exited with code 2" in done.log.system_logs


def test_a_runtime_failure_ends_system_error_with_the_reason(harness: Harness) -> None:
    backend = harness.backend()
    task_id = harness.submit(backend, "true", volumes=["/etc/passwd/tesk"])
    record = harness.wait(task_id, TERMINAL)
    assert record.state == State.SYSTEM_ERROR
    assert record.log is not None
    assert any("/etc/passwd is a file on the host" in line for line in record.log.system_logs or [])


def test_a_cwl_tes_task_with_paths_in_host_directories_completes(harness: Harness) -> None:
    # The shape of a cwl-tes task: inputs staged under /var/lib/cwl/stg<uuid>, the outdir
    # /var/spool/cwl as working directory, stdout captured there, the outdir uploaded.
    backend = harness.backend()
    stage = f"/var/lib/cwl/stg{uuid.uuid4()}"
    results = harness.tmp_path / "results"
    had = {path: os.path.lexists(path) for path in ("/var/lib/cwl", "/var/spool/cwl")}
    command = ["sh", "-c", f"sort {stage}/names.txt > sorted.txt && wc -l < sorted.txt"]
    task = Task(
        id=f"task-{uuid.uuid4().hex[:12]}",
        creation_time=timestamp(),
        executors=[
            Executor(
                image="busybox",
                command=command,
                workdir="/var/spool/cwl",
                stdout="/var/spool/cwl/count.txt",
            )
        ],
        inputs=[Input(path=f"{stage}/names.txt", content="b\na\n")],
        outputs=[Output(path="/var/spool/cwl", url=results.as_uri(), type=FileType.DIRECTORY)],
    )
    task_id = task.id or ""
    submitted = TaskRecord(task_id, State.QUEUED, time.time_ns() // 1000, task)
    harness.store.create(submitted)
    backend.submit(submitted)
    record = harness.wait(task_id, TERMINAL)

    assert record.state == State.COMPLETE, record.log
    assert (results / "sorted.txt").read_text() == "a\nb\n"
    assert (results / "count.txt").read_text() == "2\n"
    assert {path: os.path.lexists(path) for path in had} == had


def test_cancel_of_a_running_task_kills_it_and_leaves_nothing(harness: Harness) -> None:
    backend = harness.backend()
    marker = f"tesk-cancel-{uuid.uuid4().hex}"
    task_id = harness.submit(backend, f"echo started; sleep 300; echo {marker}")
    harness.wait(task_id, {State.RUNNING})
    assert eventually(lambda: len(processes_with(marker)) > 0)

    harness.cancel(backend, task_id)
    record = harness.wait(task_id, {State.CANCELED})

    assert processes_with(marker) == []
    assert not harness.data_root.joinpath("tasks", task_id).exists()
    assert record.log is not None
    assert record.log.end_time


def test_cancel_of_a_queued_task_is_immediate(harness: Harness) -> None:
    api_side = harness.api_backend()
    task_id = harness.submit(api_side, "true")
    harness.cancel(api_side, task_id)
    assert harness.state(task_id) == State.CANCELED


def test_api_processes_reach_the_runner_through_its_socket(harness: Harness) -> None:
    # A runner that would not look at the store by itself for a minute: only wake-ups move it.
    harness.backend(poll=60.0)
    api_side = harness.api_backend()
    marker = f"tesk-wake-{uuid.uuid4().hex}"
    task_id = harness.submit(api_side, f"sleep 300; echo {marker}")
    harness.wait(task_id, {State.RUNNING})
    harness.cancel(api_side, task_id)
    harness.wait(task_id, {State.CANCELED})
    assert eventually(lambda: processes_with(marker) == [])


def test_restart_settles_what_a_dead_runner_left(harness: Harness) -> None:
    mine = harness.runner_id

    def stored(state: State, worker: str | None) -> str:
        record = harness.record("echo hi")
        harness.store.create(record)
        if state != State.QUEUED:
            harness.store.update(record.id, Progress(State.RUNNING), worker=worker)
            if state == State.CANCELING:
                harness.store.update(record.id, Progress(State.CANCELING))
        return record.id

    running = stored(State.RUNNING, mine)
    canceling = stored(State.CANCELING, mine)
    elsewhere = stored(State.RUNNING, "local:another-host:/srv/tesk")
    queued = stored(State.QUEUED, None)
    leftover = harness.data_root / "tasks" / running / "volume" / "data"
    leftover.mkdir(parents=True)
    (leftover / "partial").write_text("x")

    harness.backend()

    # The attempt the dead runner held lost its capacity: it runs again as attempt 2.
    retried = harness.wait(running, {State.COMPLETE})
    assert len(retried.attempts) == 1
    assert retried.attempts[0].system_logs == [
        STOPPED_REASON,
        f"attempt 1 lost its capacity ({STOPPED_REASON}); retried as attempt 2",
    ]
    assert retried.log is not None
    assert retried.log.logs[0].stdout == "hi\n"
    harness.wait(canceling, {State.CANCELED})
    harness.wait(queued, {State.COMPLETE})
    assert harness.state(elsewhere) == State.RUNNING
    assert not leftover.exists()


def test_concurrency_is_bounded(harness: Harness) -> None:
    backend = harness.backend(max_concurrent_tasks=2)
    wait_for_gate = "until [ -e /gate/open ]; do sleep 0.05; done"
    ids = [harness.submit(backend, wait_for_gate, volumes=["/gate"]) for _ in range(3)]

    harness.wait(ids[0], {State.RUNNING})
    harness.wait(ids[1], {State.RUNNING})
    time.sleep(1.5)  # more than a poll: the runner had every chance to start a third task
    assert harness.state(ids[2]) == State.QUEUED

    def open_gate(task_id: str) -> None:
        gate = harness.data_root / "tasks" / task_id / "volume" / "gate"
        (gate / "open").touch()

    open_gate(ids[0])
    harness.wait(ids[0], {State.COMPLETE})
    harness.wait(ids[2], {State.RUNNING})
    assert harness.state(ids[1]) == State.RUNNING
    open_gate(ids[1])
    open_gate(ids[2])
    harness.wait(ids[1], {State.COMPLETE})
    harness.wait(ids[2], {State.COMPLETE})


def test_a_restart_without_attempts_left_ends_the_task_preempted(harness: Harness) -> None:
    harness.max_attempts = 1
    record = harness.record("echo hi")
    harness.store.create(record)
    harness.store.update(record.id, Progress(State.RUNNING), worker=harness.runner_id)

    harness.backend()

    ended = harness.wait(record.id, {State.PREEMPTED})
    assert ended.attempts == ()
    assert ended.log is not None
    assert ended.log.system_logs == [STOPPED_REASON]


def test_stop_queues_running_tasks_again_as_a_new_attempt(harness: Harness) -> None:
    backend = harness.backend(start=False)
    backend.start()
    marker = f"tesk-stop-{uuid.uuid4().hex}"
    task_id = harness.submit(backend, f"sleep 300; echo {marker}")
    harness.wait(task_id, {State.RUNNING})
    assert eventually(lambda: len(processes_with(marker)) > 0)

    backend.stop()

    record = harness.store.get(task_id)
    assert record is not None
    assert record.state == State.QUEUED
    assert record.log is None
    assert record.worker is None
    assert len(record.attempts) == 1
    assert STOPPED_REASON in (record.attempts[0].system_logs or [])
    assert eventually(lambda: processes_with(marker) == [])
    # The data dir is free for the next runner.
    harness.backend()


def test_one_runner_per_data_dir(harness: Harness) -> None:
    harness.backend()
    second = harness.backend(start=False)
    with pytest.raises(BackendError, match="another TESK runner"):
        second.start()


def test_no_working_runtime_is_a_clear_startup_error(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(harness.tmp_path))
    backend = harness.backend(start=False, runtime="auto")
    with pytest.raises(BackendError, match="install bubblewrap"):
        backend.start()
    # The lock was released: a working runner can take the data dir.
    monkeypatch.undo()
    harness.backend()


@pytest.mark.podman
@pytest.mark.skipif(PODMAN_IMAGE is None, reason="TESK_TEST_PODMAN_IMAGE not set (test-setup)")
def test_podman_tasks_complete_and_cancel(harness: Harness) -> None:
    backend = harness.backend(runtime="podman")
    image = PODMAN_IMAGE or ""
    done = harness.record("echo hi > /data/x; cat /data/x", volumes=["/data"])
    done.task.executors[0].image = image
    harness.store.create(done)
    backend.submit(done)
    record = harness.wait(done.id, TERMINAL)
    assert record.state == State.COMPLETE
    assert record.log is not None
    assert record.log.logs[0].stdout == "hi\n"

    marker = f"tesk-podman-cancel-{uuid.uuid4().hex}"
    long = harness.record(f"sleep 300; echo {marker}")
    long.task.executors[0].image = image
    harness.store.create(long)
    backend.submit(long)
    harness.wait(long.id, {State.RUNNING})
    assert eventually(lambda: len(processes_with(marker)) > 0)
    harness.cancel(backend, long.id)
    harness.wait(long.id, {State.CANCELED})
    assert processes_with(marker) == []
    names = subprocess.run(
        ["podman", "ps", "-a", "--format", "{{.Names}}"], capture_output=True, check=True
    ).stdout.decode()
    assert f"tesk-{long.id}-0" not in names


def test_the_run_time_limit_is_the_only_backend_parameter(harness: Harness) -> None:
    backend = harness.api_backend()
    assert list(backend.supported_backend_parameters()) == ["max_runtime_seconds"]
    backend.check_backend_parameters({"max_runtime_seconds": "3600"})
    for bad in ("0", "-1", "1.5", "an hour", ""):
        with pytest.raises(ValueError, match=r"max_runtime_seconds: .* not a whole number"):
            backend.check_backend_parameters({"MAX_RUNTIME_SECONDS": bad})


def test_an_executor_over_its_run_time_limit_is_stopped_and_the_task_fails(
    harness: Harness,
) -> None:
    backend = harness.backend()
    task_id = harness.submit(
        backend,
        "echo started; sleep 60; echo never",
        "echo the next executor ran",
        resources=Resources(backend_parameters={"max_runtime_seconds": "1"}),
    )
    record = harness.wait(task_id, TERMINAL)
    assert record.state == State.EXECUTOR_ERROR
    assert record.log is not None
    assert [e.stdout for e in record.log.logs] == ["started\n"]  # the second never ran
    lines = record.log.system_logs or []
    assert "executor 0: ran longer than its limit of 1 s and was stopped" in lines
    assert "executor 0 ran longer than the task's run-time limit" in lines


def test_the_servers_run_time_limit_applies_to_tasks_that_set_none(harness: Harness) -> None:
    config = harness.config().model_copy(update={"limits": LimitsConfig(max_runtime_seconds=1)})
    runner = LocalRunner(config, harness.store, stager=FakeStager(), stop_grace_s=0.5)
    backend = LocalBackend.serving(runner, harness.store)
    backend.start()
    harness.backends.append(backend)
    limited = harness.submit(backend, "sleep 60")
    own_limit = Resources(backend_parameters={"max_runtime_seconds": "30"})
    longer = harness.submit(backend, "sleep 2; echo done", resources=own_limit)
    assert harness.wait(limited, TERMINAL).state == State.EXECUTOR_ERROR
    finished = harness.wait(longer, TERMINAL)
    assert finished.state == State.COMPLETE
    assert finished.log is not None
    assert finished.log.logs[0].stdout == "done\n"


def test_an_api_process_backend_runs_nothing(harness: Harness) -> None:
    with pytest.raises(BackendError, match="only submits"):
        harness.api_backend().start()


def test_one_owners_backlog_does_not_starve_another_owners_task(harness: Harness) -> None:
    backend = harness.backend(max_concurrent_tasks=2)
    backlog = []
    for _ in range(8):
        record = dataclasses.replace(harness.record("sleep 0.5"), owner="alice")
        harness.store.create(record)
        backend.submit(record)
        backlog.append(record.id)
    single = dataclasses.replace(harness.record("true"), owner="bob")
    harness.store.create(single)
    backend.submit(single)

    started = {}
    for task_id in [*backlog, single.id]:
        done = harness.wait(task_id, TERMINAL, timeout=60)
        assert done.state == State.COMPLETE
        assert done.log is not None
        assert done.log.start_time is not None
        started[task_id] = done.log.start_time
    # Bob's task came last but started before most of Alice's earlier backlog.
    after_bob = [t for t in backlog if started[t] > started[single.id]]
    assert len(after_bob) >= 5, sorted(started.items(), key=lambda item: item[1])
