"""The executor wrapper keeps stdout and stderr apart and the command's exit code (real sh)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tesk.backends.kubernetes.streams import (
    StreamPaths,
    escape,
    new_marker,
    split_tails,
    split_usage,
    wrapped_command,
)
from tesk.engine.usage import ExecutorUsage


def run_wrapped(
    tmp_path: Path,
    command: list[str],
    tail: int = 1000,
    stdin: str = "/dev/null",
    cgroup: Path | None = None,
) -> tuple[int, str, str]:
    """(exit code, pod log, marker) of the wrapper run by a real sh; by default over an empty
    cgroup directory (the host's own cgroup is not a container's)."""
    marker = new_marker()
    paths = StreamPaths(stdin, str(tmp_path / "out"), str(tmp_path / "err"))
    if cgroup is None:
        cgroup = tmp_path / "no-cgroup"
        cgroup.mkdir(exist_ok=True)
    done = subprocess.run(
        wrapped_command("/bin/sh", command, paths, tail, marker, str(cgroup)),
        capture_output=True,
        check=False,
    )
    # Kubernetes' pod log is stdout and stderr of the container, merged.
    return done.returncode, (done.stdout + done.stderr).decode(), marker


def run(tmp_path: Path, command: list[str], tail: int = 1000, stdin: str = "/dev/null"):  # type: ignore[no-untyped-def]
    code, log, marker = run_wrapped(tmp_path, command, tail, stdin)
    paths = StreamPaths(stdin, str(tmp_path / "out"), str(tmp_path / "err"))
    return code, split_tails(log, marker, tail), paths


def test_streams_stay_apart_and_the_exit_code_is_the_commands(tmp_path: Path) -> None:
    code, (out, err), paths = run(
        tmp_path, ["sh", "-c", "echo one; echo two >&2; echo three; exit 7"]
    )
    assert code == 7
    assert (out, err) == ("one\nthree\n", "two\n")
    assert Path(paths.stdout).read_text() == "one\nthree\n"


def test_arguments_reach_the_command_unparsed(tmp_path: Path) -> None:
    tricky = ["printf", "%s|", "a b", "$HOME", "`id`", "'q'", "*"]
    code, (out, _err), _ = run(tmp_path, tricky)
    assert code == 0
    assert out == "a b|$HOME|`id`|'q'|*|"


def test_stdin_comes_from_the_requested_file(tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("from stdin\n")
    _code, (out, _err), _ = run(tmp_path, ["cat"], stdin=str(source))
    assert out == "from stdin\n"


def test_only_the_tail_is_kept(tmp_path: Path) -> None:
    _code, (out, err), paths = run(tmp_path, ["sh", "-c", "seq 1 1000; seq 1 1000 >&2"], tail=10)
    assert out == "\n998\n999\n1000\n"[-10:]
    assert err == out
    assert Path(paths.stdout).stat().st_size > 3000


def test_a_missing_command_is_exit_127_with_the_shell_saying_why(tmp_path: Path) -> None:
    code, (out, err), _ = run(tmp_path, ["no-such-command-anywhere"])
    assert code == 127
    assert out == ""
    assert "not found" in err


def test_usage_is_read_from_a_cgroup_v2_directory(tmp_path: Path) -> None:
    cgroup = tmp_path / "cg2"
    cgroup.mkdir()
    (cgroup / "cpu.stat").write_text("usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n")
    (cgroup / "memory.peak").write_text("73400320\n")
    code, log, marker = run_wrapped(tmp_path, ["sh", "-c", "echo out; echo err >&2"], cgroup=cgroup)
    assert code == 0
    assert split_tails(log, marker, 100) == ("out\n", "err\n")
    assert split_usage(log, marker) == ExecutorUsage(cpu_seconds=2.5, peak_memory_bytes=73400320)


def test_usage_is_read_from_cgroup_v1_directories(tmp_path: Path) -> None:
    cgroup = tmp_path / "cg1"
    (cgroup / "cpuacct").mkdir(parents=True)
    (cgroup / "memory").mkdir()
    (cgroup / "cpuacct" / "cpuacct.usage").write_text("1234567890\n")
    (cgroup / "memory" / "memory.max_usage_in_bytes").write_text("5242880\n")
    code, log, marker = run_wrapped(tmp_path, ["sh", "-c", "exit 3"], cgroup=cgroup)
    assert code == 3
    assert split_usage(log, marker) == ExecutorUsage(
        cpu_seconds=1.234567, peak_memory_bytes=5242880
    )


def test_a_kernel_without_memory_peak_gives_cpu_only(tmp_path: Path) -> None:
    cgroup = tmp_path / "old-v2"
    cgroup.mkdir()
    (cgroup / "cpu.stat").write_text("usage_usec 10\n")
    _code, log, marker = run_wrapped(tmp_path, ["true"], cgroup=cgroup)
    assert split_usage(log, marker) == ExecutorUsage(cpu_seconds=0.00001, peak_memory_bytes=None)
    assert "memory.peak" not in log  # the failed read says nothing


def test_no_cgroup_files_means_no_usage(tmp_path: Path) -> None:
    _code, log, marker = run_wrapped(tmp_path, ["echo", "hi"])
    assert split_usage(log, marker) is None
    assert split_tails(log, marker, 100) == ("hi\n", "")


def test_a_killed_wrapper_leaves_no_usage() -> None:
    assert split_usage("partial output\n", "--m--") is None


def test_a_log_without_the_marker_is_kept_as_stderr() -> None:
    assert split_tails("sh: cannot create /x: Permission denied\n", "--m--", 100) == (
        "",
        "sh: cannot create /x: Permission denied\n",
    )


@pytest.mark.parametrize(
    ("text", "escaped"),
    [("$(HOME)", "$$(HOME)"), ("$$", "$$$$"), ("no dollar", "no dollar"), ("$x", "$$x")],
)
def test_escape_protects_from_kubernetes_expansion(text: str, escaped: str) -> None:
    assert escape(text) == escaped


def test_an_executors_marker_is_the_same_for_every_taskmaster_of_its_job() -> None:
    assert new_marker("uid-1", 0) == new_marker("uid-1", 0)
    assert new_marker("uid-1", 0) != new_marker("uid-1", 1)
    assert new_marker("uid-1", 0) != new_marker("uid-2", 0)
    assert new_marker() != new_marker()


def test_stdout_reaches_the_pod_log_while_the_command_runs(tmp_path: Path) -> None:
    marker = new_marker()
    paths = StreamPaths("/dev/null", str(tmp_path / "out"), str(tmp_path / "err"))
    gate = tmp_path / "gate"
    # The command waits until the first line has been read from the container's stdout.
    script = f"echo first; while [ ! -e {gate} ]; do sleep 0.05; done; echo second; exit 4"
    process = subprocess.Popen(
        wrapped_command("/bin/sh", ["sh", "-c", script], paths, 1000, marker),
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    first = process.stdout.readline()
    gate.touch()
    rest = process.stdout.read()
    assert process.wait(timeout=30) == 4
    assert first == b"first\n"
    assert split_tails((first + rest).decode(), marker, 1000) == ("first\nsecond\n", "")
    assert Path(paths.stdout).read_text() == "first\nsecond\n"


def test_without_tee_stdout_goes_to_the_file_and_its_tail_to_the_log(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for program in ("sh", "tail"):
        found = subprocess.run(["sh", "-c", f"command -v {program}"], capture_output=True)
        (bin_dir / program).symlink_to(found.stdout.decode().strip())
    marker = new_marker()
    paths = StreamPaths("/dev/null", str(tmp_path / "out"), str(tmp_path / "err"))
    done = subprocess.run(
        wrapped_command(
            "/bin/sh", ["sh", "-c", "echo out; echo err >&2; exit 5"], paths, 100, marker
        ),
        capture_output=True,
        env={"PATH": str(bin_dir)},
    )
    assert done.returncode == 5
    assert split_tails(done.stdout.decode(), marker, 100) == ("out\n", "err\n")
