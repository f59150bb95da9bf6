"""A podman container's usage read from its parent cgroup, on v1 and v2 layouts (fake trees of
the files the kernel writes; the real thing is in tests/contract/test_runtimes.py)."""

from __future__ import annotations

from pathlib import Path

from tesk.backends.local.cgroups import ContainerCgroup
from tesk.engine.usage import ExecutorUsage

NAME = "tesk-task1-0"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v2_counts_the_container_without_its_monitor(tmp_path: Path) -> None:
    parent = tmp_path / "tesk" / NAME
    write(parent / "cpu.stat", "usage_usec 3000000\nuser_usec 2500000\nsystem_usec 500000\n")
    write(parent / "memory.peak", "52428800\n")
    write(parent / "conmon" / "cpu.stat", "usage_usec 200000\n")
    cgroup = ContainerCgroup(NAME, root=tmp_path)
    assert cgroup.parent == f"/tesk/{NAME}"
    assert cgroup.usage() == ExecutorUsage(cpu_seconds=2.8, peak_memory_bytes=52428800)


def test_cgroup_v1_reads_cpuacct_and_memory_hierarchies(tmp_path: Path) -> None:
    write(tmp_path / "cpu,cpuacct" / "tesk" / NAME / "cpuacct.usage", "1500000000\n")
    write(tmp_path / "cpu,cpuacct" / "tesk" / NAME / "conmon" / "cpuacct.usage", "500000000\n")
    write(tmp_path / "memory" / "tesk" / NAME / "memory.max_usage_in_bytes", "1048576\n")
    (tmp_path / "pids" / "tesk" / NAME).mkdir(parents=True)
    usage = ContainerCgroup(NAME, root=tmp_path).usage()
    assert usage == ExecutorUsage(cpu_seconds=1.0, peak_memory_bytes=1048576)


def test_without_a_peak_file_only_cpu_is_reported(tmp_path: Path) -> None:
    write(tmp_path / "tesk" / NAME / "cpu.stat", "usage_usec 10\n")
    assert ContainerCgroup(NAME, root=tmp_path).usage() == ExecutorUsage(0.00001, None)


def test_no_cgroup_means_no_usage(tmp_path: Path) -> None:
    (tmp_path / "memory").mkdir()
    assert ContainerCgroup(NAME, root=tmp_path).usage() is None


def test_remove_takes_the_parent_and_what_is_below_it_in_every_hierarchy(tmp_path: Path) -> None:
    # On a real cgroup file system only directories are removed (their files go with them);
    # these fake ones are empty directories.
    for hierarchy in ("cpuacct", "memory", "pids"):
        (tmp_path / hierarchy / "tesk" / NAME / "conmon").mkdir(parents=True)
    (tmp_path / "memory" / "tesk" / "tesk-other-0").mkdir()
    ContainerCgroup(NAME, root=tmp_path).remove()
    assert sorted(p.name for p in tmp_path.glob("*/tesk/*")) == ["tesk-other-0"]
