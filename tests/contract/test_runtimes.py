"""The Runtime contract, run against every runtime this machine has.

bwrap always (scripts/test-setup.sh installs it); podman when scripts/test-setup.d/podman.sh
imported its test image (TESK_TEST_PODMAN_IMAGE); the Kubernetes runtime on the test cluster
(tests/k8s/cluster) for the tests that take `box`. Commands stick to what both the host and a
busybox image provide. Tests that look inside a local task directory take `local_box`.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tesk.backends.local.choose import build_launcher
from tesk.backends.local.container import ContainerLauncher
from tesk.backends.local.launcher import LABEL_TASK, ExecutorUser, Launcher
from tesk.backends.local.layout import DataDir
from tesk.backends.local.logtail import read_tail
from tesk.backends.local.runtime import LocalRuntime
from tesk.config import LocalConfig
from tesk.engine.cancellation import Cancellation, Cancelled
from tesk.engine.runtime import ExecutorResult, RuntimeFailure
from tesk.tes.models import Executor, FileType, Input, Output, Resources, Task
from tests.contract.kubernetes_sandbox import KubernetesSandbox, kubernetes_sandbox
from tests.contract.runtime_steps import run_task
from tests.fakes.fake_stager import FakeStager

PODMAN_IMAGE = os.environ.get("TESK_TEST_PODMAN_IMAGE")

KINDS = [
    pytest.param(
        "bwrap",
        marks=pytest.mark.skipif(shutil.which("bwrap") is None, reason="bwrap not installed"),
    ),
    pytest.param(
        "podman",
        marks=[
            pytest.mark.podman,
            pytest.mark.skipif(
                PODMAN_IMAGE is None, reason="TESK_TEST_PODMAN_IMAGE not set (test-setup)"
            ),
        ],
    ),
]


def processes_with(marker: str, *, command: str | None = None) -> list[int]:
    """Pids of live processes whose command line contains `marker` (and starts with `command`)."""
    found = []
    needle = marker.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmdline and (command is None or cmdline.startswith(command.encode() + b"\0")):
            found.append(int(entry.name))
    return found


def running(marker: str) -> bool:
    """Whether the executor's own shell (not just its launcher) runs."""
    return bool(processes_with(marker, command="sh"))


def wait_for(condition: object, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.05)
    return False


def start_executor(
    runtime: LocalRuntime, task: Task, cancel: Cancellation
) -> tuple[threading.Thread, list[ExecutorResult | Exception]]:
    """Run the task's first executor in a thread; its result or failure lands in the list."""
    outcome: list[ExecutorResult | Exception] = []

    def run() -> None:
        try:
            outcome.append(runtime.run_executor(task, 0, task.executors[0], None, cancel))
        except (RuntimeFailure, Cancelled) as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


@dataclass
class Sandbox:
    """A data dir and a launcher of one kind; runs tasks through LocalRuntime."""

    kind: str
    data: DataDir
    launcher: Launcher
    image: str
    tail_bytes: int = 64 * 1024
    user: ExecutorUser | None = None

    def task(self, *executors: Executor, **fields: object) -> Task:
        return Task(id=f"t{uuid.uuid4().hex[:12]}", executors=list(executors), **fields)  # type: ignore[arg-type]

    def executor(self, script: str, **fields: object) -> Executor:
        return Executor(image=self.image, command=["sh", "-c", script], **fields)  # type: ignore[arg-type]

    def runtime(self, task: Task) -> LocalRuntime:
        return LocalRuntime(
            self.data.task(task.id),
            self.launcher,
            FakeStager(),
            labels={LABEL_TASK: task.id or ""},
            log_tail_bytes=self.tail_bytes,
            user=self.user,
        )

    def run(self, task: Task) -> list[ExecutorResult]:
        runtime = self.runtime(task)
        return run_task(runtime, task)

    def run_one(self, script: str, **fields: object) -> ExecutorResult:
        return self.run(self.task(self.executor(script, **fields)))[0]


AnyBox = Sandbox | KubernetesSandbox


def make_sandbox(kind: str, data_root: Path, **config: object) -> Sandbox:
    local = LocalConfig(runtime=kind, **config)  # type: ignore[arg-type]
    launcher = build_launcher(kind, local, hidden=[data_root])
    launcher.check()
    user = ExecutorUser.parse(local.executor_user) if local.executor_user else None
    image = PODMAN_IMAGE if kind == "podman" else "ignored:latest"
    return Sandbox(kind, DataDir(data_root), launcher, image or "", user=user)


@pytest.fixture
def data_root() -> Iterator[Path]:
    # Not under /tmp: every sandbox has its own /tmp, which would hide the data dir anyway.
    root = Path(tempfile.mkdtemp(prefix="tesk-runtime-test-", dir="/var/tmp"))
    root.chmod(0o711)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def local_box(kind: str, data_root: Path) -> Sandbox:
    return make_sandbox(kind, data_root)


@pytest.fixture(params=[*KINDS, "kubernetes"])
def box(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Sandbox | KubernetesSandbox]:
    """The contract every runtime keeps: bwrap, podman, and pods on the Kubernetes test cluster."""
    if request.param != "kubernetes":
        data_root = request.getfixturevalue("data_root")
        yield make_sandbox(str(request.param), data_root)
        return
    with kubernetes_sandbox() as sandbox:
        yield sandbox


def test_exit_codes(box: AnyBox) -> None:
    assert box.run_one("exit 0").exit_code == 0
    assert box.run_one("exit 3").exit_code == 3


def test_a_missing_command_exits_127(box: AnyBox) -> None:
    task = box.task(Executor(image=box.image, command=["tesk-no-such-command"]))
    assert box.run(task)[0].exit_code == 127


def test_stdout_and_stderr_go_to_the_volume_files_and_tails(local_box: Sandbox) -> None:
    task = local_box.task(
        local_box.executor("echo out; echo err >&2; ls /logs", stdout="/logs/stdout"),
        local_box.executor("true", stderr="/logs/err/stderr"),
        volumes=["/logs"],
    )
    runtime = local_box.runtime(task)
    runtime.prepare(task)
    first = runtime.run_executor(task, 0, task.executors[0], None, Cancellation())
    assert first.stdout_tail == "out\nstdout\n"
    assert first.stderr_tail == "err\n"
    assert (runtime.volume / "logs" / "stdout").read_text() == "out\nstdout\n"
    runtime.run_executor(task, 1, task.executors[1], None, Cancellation())
    assert (runtime.volume / "logs" / "err" / "stderr").read_text() == ""
    runtime.cleanup()
    assert not local_box.data.task(task.id).root.exists()


def test_logs_without_a_path_go_to_the_task_log_dir(local_box: Sandbox) -> None:
    task = local_box.task(local_box.executor("echo hello; echo oops >&2"))
    runtime = local_box.runtime(task)
    runtime.prepare(task)
    result = runtime.run_executor(task, 0, task.executors[0], None, Cancellation())
    logs = local_box.data.task(task.id).logs
    assert (logs / "0.stdout").read_text() == "hello\n"
    assert (logs / "0.stderr").read_text() == "oops\n"
    assert result.stdout_tail == "hello\n"
    runtime.cleanup()


def test_tails_keep_only_the_end(box: AnyBox) -> None:
    box.tail_bytes = 10
    result = box.run_one("i=0; while [ $i -lt 20 ]; do echo line$i; i=$((i+1)); done")
    assert result.stdout_tail == "18\nline19\n"


def test_stdin_comes_from_the_volume(box: AnyBox) -> None:
    task = box.task(
        box.executor("tr a-z A-Z", stdin="/in/words.txt"),
        inputs=[Input(path="/in/words.txt", content="some words\n")],
    )
    assert box.run(task)[0].stdout_tail == "SOME WORDS\n"


def test_a_missing_stdin_is_a_runtime_failure(local_box: Sandbox) -> None:
    task = local_box.task(local_box.executor("cat", stdin="/in/none.txt"), volumes=["/in"])
    with pytest.raises(RuntimeFailure, match="stdin"):
        local_box.run(task)


def test_workdir_is_used_and_created_on_the_volume(local_box: Sandbox) -> None:
    task = local_box.task(
        local_box.executor("pwd; touch here", workdir="/work/a/b"), volumes=["/work"]
    )
    runtime = local_box.runtime(task)
    runtime.prepare(task)
    result = runtime.run_executor(task, 0, task.executors[0], None, Cancellation())
    assert result.stdout_tail == "/work/a/b\n"
    assert (runtime.volume / "work" / "a" / "b" / "here").exists()
    runtime.cleanup()


def test_a_workdir_off_the_volume_is_created_as_docker_would(box: AnyBox) -> None:
    # Neither a mount point nor /tmp: the sandbox's own file system, like a container's.
    if box.kind == "podman":
        pytest.skip("podman refuses a --workdir its image lacks (docs/runtimes.md)")
    name = f"tesk{uuid.uuid4().hex[:8]}"
    result = box.run_one("pwd", workdir=f"/{name}/src/app")
    assert (result.exit_code, result.stdout_tail) == (0, f"/{name}/src/app\n")


def test_without_workdir_commands_start_at_the_root(box: AnyBox) -> None:
    # The busybox test image sets no working directory; bwrap has no image.
    assert box.run_one("pwd").stdout_tail == "/\n"


def test_environment_variables(box: AnyBox) -> None:
    env = {"GREETING": "hello world", "MULTI": "a\nb", "PATH": "/usr/bin:/bin"}
    result = box.run_one('echo "$GREETING"; echo "$MULTI"; echo "$PATH"', env=env)
    assert result.stdout_tail == "hello world\na\nb\n/usr/bin:/bin\n"


def test_new_top_level_paths_are_shared_between_executors(box: AnyBox) -> None:
    name = f"tesk{uuid.uuid4().hex[:8]}"
    task = box.task(
        box.executor(f"mkdir -p /{name}/deep && echo data > /{name}/deep/file"),
        box.executor(f"cat /{name}/deep/file"),
        volumes=[f"/{name}"],
    )
    assert box.run(task)[1].stdout_tail == "data\n"


# Directories every Linux host has, as cwl-tes and other clients use them for task paths:
# /var/lib/cwl/stg<uuid> for inputs, /var/spool/cwl as outdir and workdir. /var/run is a
# symlink to /run on most hosts.
HOST_DIRECTORIES = ["/var/lib", "/var/spool", "/opt", "/usr/local", "/home", "/var/run"]


def host_listing(directories: list[str]) -> dict[str, tuple[list[str], int]]:
    """What each host directory holds and when that last changed (its mtime)."""
    listing = {}
    for directory in directories:
        if os.path.isdir(directory):
            names = sorted(os.listdir(directory))
            listing[directory] = (names, os.stat(directory).st_mtime_ns)
    return listing


@pytest.mark.parametrize("parent", HOST_DIRECTORIES)
def test_every_kind_of_task_path_works_below_a_host_directory(box: AnyBox, parent: str) -> None:
    base = f"{parent}/tesk-{uuid.uuid4().hex[:12]}"
    before = host_listing([parent])
    task = box.task(
        box.executor(
            f"tr a-z A-Z > out/upper.txt; cat {base}/ref/ref.txt; pwd >&2;"
            f" echo scratch > {base}/scratch/note",
            stdin=f"{base}/stg1/in.txt",
            workdir=f"{base}/work",
            stdout=f"{base}/logs/stdout",
            stderr=f"{base}/logs/stderr",
        ),
        box.executor(
            f"cat {base}/work/out/upper.txt {base}/scratch/note {base}/logs/stdout"
            f" {base}/logs/stderr"
        ),
        inputs=[
            Input(path=f"{base}/stg1/in.txt", content="some words\n"),
            Input(path=f"{base}/ref/ref.txt", content="reference\n"),
        ],
        outputs=[Output(path=f"{base}/work/out/upper.txt", url="file:///unused")],
        volumes=[f"{base}/scratch"],
    )
    first, second = box.run(task)
    assert (first.exit_code, first.stdout_tail, first.stderr_tail) == (
        0,
        "reference\n",
        f"{base}/work\n",
    )
    assert (second.exit_code, second.stdout_tail) == (
        0,
        f"SOME WORDS\nscratch\nreference\n{base}/work\n",
    )
    assert host_listing([parent]) == before
    assert not os.path.lexists(base)


def test_a_cwl_tes_task_completes(box: AnyBox) -> None:
    # What cwl-tes sends: inputs staged under /var/lib/cwl/stg<uuid>, the outdir /var/spool/cwl
    # as working directory and output directory, stdout captured into it.
    stage = f"/var/lib/cwl/stg{uuid.uuid4()}"
    before = host_listing(["/var/lib", "/var/spool"])
    had = {path: os.path.lexists(path) for path in ("/var/lib/cwl", "/var/spool/cwl")}
    task = box.task(
        box.executor(
            f"wc -l < {stage}/reads.txt",
            workdir="/var/spool/cwl",
            stdout="/var/spool/cwl/count.txt",
        ),
        box.executor("cat count.txt", workdir="/var/spool/cwl"),
        inputs=[Input(path=f"{stage}/reads.txt", content="a\nb\nc\n")],
        outputs=[Output(path="/var/spool/cwl", url="file:///unused", type=FileType.DIRECTORY)],
    )
    results = box.run(task)
    assert [(r.exit_code, r.stdout_tail.strip()) for r in results] == [(0, "3"), (0, "3")]
    assert host_listing(["/var/lib", "/var/spool"]) == before
    assert {path: os.path.lexists(path) for path in had} == had


def test_tmp_is_private_and_writable(local_box: Sandbox) -> None:
    marker = f"tesk-marker-{uuid.uuid4().hex}"
    task = local_box.task(
        local_box.executor(f"echo x > /tmp/{marker} && ls /tmp"),
        local_box.executor(f"test ! -e /tmp/{marker} && echo private"),
    )
    results = local_box.run(task)
    assert results[0].stdout_tail == f"{marker}\n"
    assert results[1].stdout_tail == "private\n"
    assert not Path("/tmp", marker).exists()


def test_other_tasks_and_the_data_dir_are_not_visible(local_box: Sandbox) -> None:
    other = local_box.data.task("other-task").volume
    other.mkdir(parents=True)
    (other / "secret").write_text("s3cr3t")
    root = local_box.data.root
    result = local_box.run_one(f"cat {other}/secret; ls {root}; ls -a {root} | wc -l; echo done")
    assert "s3cr3t" not in result.stdout_tail
    assert "other-task" not in result.stdout_tail
    assert result.stdout_tail.endswith("done\n")


def test_network_is_on_by_default(box: AnyBox) -> None:
    result = box.run_one("tail -n +3 /proc/net/dev | grep -v ' lo:' | wc -l")
    assert int(result.stdout_tail.strip()) > 0


def test_network_none_leaves_only_loopback(kind: str, data_root: Path) -> None:
    box = make_sandbox(kind, data_root, network="none")
    result = box.run_one("tail -n +3 /proc/net/dev | grep -v ' lo:' | wc -l")
    assert int(result.stdout_tail.strip()) == 0


def test_executors_can_run_as_another_user(kind: str, data_root: Path) -> None:
    box = make_sandbox(kind, data_root, executor_user="65534:65534")
    task = box.task(
        box.executor("id -u; id -g; cat /in/a.txt; echo made > /in/new; touch /tmp/t; echo ok"),
        inputs=[Input(path="/in/a.txt", content="input\n")],
    )
    assert box.run(task)[0].stdout_tail == "65534\n65534\ninput\nok\n"


def test_an_unrunnable_executor_is_a_runtime_failure(local_box: Sandbox) -> None:
    if local_box.kind == "bwrap":
        # A directory cannot be made below a file of the host.
        task = local_box.task(local_box.executor("true"), volumes=["/etc/passwd/tesk"])
        match = "/etc/passwd is a file on the host"
    else:
        # Ask for an image that is neither stored nor pullable (no registry answers).
        task = local_box.task(Executor(image="localhost/tesk-no-such-image:1", command=["true"]))
        match = "tesk-no-such-image"
    with pytest.raises(RuntimeFailure, match=match):
        local_box.run(task)


def test_bwrap_says_once_that_images_are_ignored(local_box: Sandbox) -> None:
    results = local_box.run(local_box.task(local_box.executor("true"), local_box.executor("true")))
    if local_box.kind == "bwrap":
        assert len(results[0].system_logs) == 1
        assert "ignores container images" in results[0].system_logs[0]
        assert results[1].system_logs == ()
    else:
        assert results[0].system_logs == ()


def test_resources_are_applied_or_said_to_be_ignored(local_box: Sandbox) -> None:
    task = local_box.task(
        local_box.executor("echo fine"), resources=Resources(cpu_cores=1, ram_gb=0.25)
    )
    runtime = local_box.runtime(task)
    runtime.prepare(task)
    result = runtime.run_executor(task, 0, task.executors[0], task.resources, Cancellation())
    runtime.cleanup()
    assert result.stdout_tail == "fine\n"
    unenforced = [line for line in result.system_logs if "does not enforce" in line]
    assert len(unenforced) == (1 if local_box.kind == "bwrap" else 0)


needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bwrap not installed")


@needs_bwrap
def test_bwrap_host_file_system_is_read_only(data_root: Path) -> None:
    box = make_sandbox("bwrap", data_root)
    name = f"tesk-ro-{uuid.uuid4().hex}"
    result = box.run_one(f"touch /usr/{name} || echo refused; ls /etc/hostname")
    assert result.stdout_tail == "refused\n/etc/hostname\n"
    assert not Path("/usr", name).exists()


@needs_bwrap
def test_bwrap_keeps_host_directories_read_only_around_task_paths(data_root: Path) -> None:
    box = make_sandbox("bwrap", data_root)
    name = f"tesk-{uuid.uuid4().hex[:12]}"
    volume = f"/var/lib/{name}/vol"
    before = host_listing(["/", "/var", "/var/lib", "/var/lib/dpkg"])
    attempts = " ".join(
        f"; touch {path} 2>/dev/null || echo refused {path}"
        for path in ("/var/lib/dpkg/" + name, f"/var/lib/{name}/beside", "/var/" + name, "/" + name)
    )
    script = (
        f"echo data > {volume}/file && cat {volume}/file; test -d /var/lib/dpkg && echo visible"
    )
    task = box.task(box.executor(script + attempts), volumes=[volume])
    result = box.run(task)[0]
    assert result.stdout_tail == (
        f"data\nvisible\nrefused /var/lib/dpkg/{name}\nrefused /var/lib/{name}/beside\n"
        f"refused /var/{name}\nrefused /{name}\n"
    )
    assert host_listing(["/", "/var", "/var/lib", "/var/lib/dpkg"]) == before
    assert not os.path.lexists(f"/var/lib/{name}")


@needs_bwrap
def test_bwrap_task_paths_in_host_directories_work_as_another_user(data_root: Path) -> None:
    box = make_sandbox("bwrap", data_root, executor_user="65534:65534")
    # A host directory that user cannot enter: its entries stay out of the sandbox.
    private = Path(tempfile.mkdtemp(prefix="tesk-private-", dir="/var/tmp"))
    (private / "secret").write_text("s3cr3t")
    private.chmod(0o700)
    try:
        stage = f"/var/lib/cwl/stg{uuid.uuid4()}"
        task = box.task(
            box.executor(
                f"cat {stage}/in.txt; ls {private}; id -u; echo out > {private}/new/out.txt",
                workdir="/home/tesk-work",
            ),
            box.executor(f"cat {private}/new/out.txt"),
            inputs=[Input(path=f"{stage}/in.txt", content="input\n")],
            volumes=[f"{private}/new", "/home/tesk-work"],
        )
        results = box.run(task)
        assert [r.stdout_tail for r in results] == ["input\nnew\n65534\n", "out\n"]
        assert sorted(os.listdir(private)) == ["secret"]
    finally:
        shutil.rmtree(private)


@needs_bwrap
def test_bwrap_makes_a_missing_workdir_in_a_host_directory_without_writing_the_host(
    data_root: Path,
) -> None:
    box = make_sandbox("bwrap", data_root)
    name = f"tesk-{uuid.uuid4().hex}"
    before = host_listing(["/usr/local", "/var/lib"])
    for workdir in (f"/usr/local/{name}/app", f"/var/lib/{name}"):
        result = box.run_one("pwd; echo x > made && cat made", workdir=workdir)
        assert (result.exit_code, result.stdout_tail) == (0, f"{workdir}\nx\n")
    assert host_listing(["/usr/local", "/var/lib"]) == before
    # A working directory the host has is the host's: read-only.
    result = box.run_one("pwd; touch tesk-made || echo refused", workdir="/usr")
    assert result.stdout_tail == "/usr\nrefused\n"


def test_cancel_kills_every_process_and_cleanup_removes_the_volume(local_box: Sandbox) -> None:
    marker = f"tesk-cancel-{uuid.uuid4().hex}"
    secret = f"secret-{uuid.uuid4().hex}"
    task = local_box.task(
        local_box.executor(f"sleep 300 & sleep 300; echo {marker}", env={"TOKEN": secret}),
        volumes=["/work"],
    )
    runtime = local_box.runtime(task)
    runtime.prepare(task)
    cancel = Cancellation()
    thread, outcome = start_executor(runtime, task, cancel)
    assert wait_for(lambda: running(marker)), "the executor never started"
    # Environment values never appear on a command line.
    assert processes_with(secret) == []
    cancel.cancel()
    thread.join(60)
    assert not thread.is_alive()
    assert [type(o) for o in outcome] == [Cancelled]
    assert wait_for(lambda: processes_with(marker) == [] and processes_with("sleep 300") == [])
    runtime.cleanup()
    assert not local_box.data.task(task.id).root.exists()
    if local_box.kind == "podman":
        names = subprocess.run(
            ["podman", "ps", "-a", "--format", "{{.Names}}"], capture_output=True, check=True
        ).stdout.decode()
        assert f"tesk-{task.id}-0" not in names
    # Nothing starts after a cancel.
    with pytest.raises(Cancelled, match="cancelled"):
        runtime.run_executor(task, 0, task.executors[0], None, cancel)


def test_cancel_right_after_the_start_leaves_nothing(local_box: Sandbox) -> None:
    marker = f"tesk-early-{uuid.uuid4().hex}"
    task = local_box.task(local_box.executor(f"sleep 300; echo {marker}"))
    runtime = local_box.runtime(task)
    runtime.prepare(task)
    cancel = Cancellation()
    thread, _ = start_executor(runtime, task, cancel)
    assert wait_for(lambda: len(processes_with(marker)) > 0)  # the launcher, at least
    cancel.cancel()
    thread.join(60)
    assert not thread.is_alive()
    assert wait_for(lambda: processes_with(marker) == [])
    runtime.cleanup()


def test_tails_start_at_a_whole_character(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_bytes("aé€".encode())  # 1 + 2 + 3 bytes
    assert read_tail(log, 4) == "€"
    assert read_tail(log, 6) == "aé€"
    assert read_tail(log, 0) == ""
    assert read_tail(tmp_path / "missing", 10) == ""
    log.write_bytes(b"\xff\xfeok")
    assert read_tail(log, 100) == "\ufffd\ufffdok"


def test_huge_output_keeps_memory_constant(local_box: Sandbox) -> None:
    size = 256 * 1024 * 1024
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    task = local_box.task(
        local_box.executor(f"head -c {size} /dev/zero | tr '\\0' x", stdout="/out/big")
    )
    runtime = local_box.runtime(task)
    runtime.prepare(task)
    result = runtime.run_executor(task, 0, task.executors[0], None, Cancellation())
    assert (runtime.volume / "out" / "big").stat().st_size == size
    runtime.cleanup()
    growth_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert result.stdout_tail == "x" * local_box.tail_bytes
    assert growth_kib < 32 * 1024, f"TESK grew by {growth_kib} KiB"


@needs_bwrap
def test_bwrap_sandboxes_die_with_the_runner(data_root: Path) -> None:
    marker = f"tesk-orphan-{uuid.uuid4().hex}"
    script = f"""
import os, sys
from pathlib import Path
from tesk.backends.local.bwrap import BwrapLauncher
from tesk.backends.local.launcher import Bind, LaunchSpec
root = Path({str(data_root)!r})
launcher = BwrapLauncher(hidden=[root])
launcher.check()
(root / "tmp").mkdir()
spec = LaunchSpec(name="x", image="-", command=["sh", "-c", "sleep 300; echo {marker}"],
                  binds=[Bind(root / "tmp", "/tmp")], workdir="/",
                  stdout=root / "out", stderr=root / "err")
launcher.launch(spec)
print("started", flush=True)
sys.stdin.read()
"""
    runner = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert runner.stdout is not None
    assert runner.stdout.readline() == b"started\n"
    assert wait_for(lambda: running(marker))
    runner.kill()
    runner.wait()
    assert wait_for(lambda: processes_with(marker) == [])


@needs_bwrap
def test_bwrap_leftovers_of_a_dead_runner_are_killed(data_root: Path) -> None:
    box = make_sandbox("bwrap", data_root)
    marker = f"tesk-leftover-{uuid.uuid4().hex}"
    task = box.task(box.executor(f"sleep 300; echo {marker}"))
    runtime = box.runtime(task)
    runtime.prepare(task)
    thread, _ = start_executor(runtime, task, Cancellation())
    assert wait_for(lambda: running(marker))
    # A new runner of the same data dir finds the sandbox by the data dir it hides.
    make_sandbox("bwrap", data_root).launcher.remove_leftovers({})
    thread.join(60)
    assert wait_for(lambda: processes_with(marker) == [])
    runtime.cleanup()


@pytest.mark.podman
@pytest.mark.skipif(PODMAN_IMAGE is None, reason="TESK_TEST_PODMAN_IMAGE not set (test-setup)")
def test_podman_finds_its_containers_conf_in_the_config(
    data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = os.environ.get("CONTAINERS_CONF")
    if not conf:
        pytest.skip("the test setup configured podman system-wide")
    monkeypatch.delenv("CONTAINERS_CONF")
    box = make_sandbox("podman", data_root, containers_conf=conf)
    assert box.run_one("echo configured").stdout_tail == "configured\n"


@pytest.mark.podman
@pytest.mark.skipif(PODMAN_IMAGE is None, reason="TESK_TEST_PODMAN_IMAGE not set (test-setup)")
def test_podman_leftovers_of_a_dead_runner_are_removed() -> None:
    launcher = ContainerLauncher("podman")
    launcher.check()
    runner = f"local:test:{uuid.uuid4().hex}"
    name = f"tesk-leftover-{uuid.uuid4().hex[:8]}"
    labels = ["--label", f"io.tesk.runner={runner}"]
    subprocess.run(
        ["podman", "run", "-d", "--name", name, *labels, PODMAN_IMAGE or "", "sleep", "300"],
        check=True,
        capture_output=True,
    )
    launcher.remove_leftovers({"io.tesk.runner": runner})
    listed = subprocess.run(
        ["podman", "ps", "-a", "--filter", f"name={name}", "--format", "{{.Names}}"],
        capture_output=True,
        check=True,
    )
    assert listed.stdout.decode().strip() == ""


def test_the_runtime_measures_what_an_executors_processes_used(box: AnyBox) -> None:
    # bwrap: wait4 of the sandbox's init; podman: the container's parent cgroup (as root with
    # cgroupfs, as here); Kubernetes: the container's own cgroup.
    # A child (dd) holds a 64 MiB buffer and burns CPU while the shell waits for it.
    result = box.run_one("dd if=/dev/zero of=/dev/null bs=64M count=40 2>/dev/null; echo done")
    assert result.stdout_tail == "done\n"
    assert result.usage is not None
    assert result.usage.peak_memory_bytes >= 64 * 1024 * 1024
    assert result.usage.cpu_seconds > 0
    idle = box.run_one("true")
    assert idle.usage is not None
    assert idle.usage.peak_memory_bytes < result.usage.peak_memory_bytes
