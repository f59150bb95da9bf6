"""Separate stdout and stderr of an executor, which Kubernetes' pod log merges.

The executor's command runs under a short POSIX shell script (the image's `/bin/sh`): stdout and
stderr go to files (the paths the task asked for, else files on the task volume). Stdout is also
copied to the container's stdout as it is written (`tee`), so the pod log shows it live (the API
serves it, output.py); an image without `tee` gets the file only, and its tail at the end. Once
the command has ended the script prints a line with a marker only this pod knows and the tail of
stderr, then what the container's cgroup says the command used, and exits with the command's
exit code. The taskmaster reads the pod log once the container has terminated and splits it at
the marker. The user's command is passed as separate arguments ("$@"), never parsed by the
shell.

With `tee`, the command's stdout is a pipe rather than a file, and the executor ends when
everything holding that pipe has closed it (a background process the command leaves running with
stdout open keeps the executor running).

Usage comes from the container's own cgroup as the kernel counts it (only shell builtins read
it, so every image can): CPU time of everything the container ran, and its memory high-water
mark (which includes the page cache, unlike a process's resident set). cgroup v2 gives
`cpu.stat` usage_usec and `memory.peak` (Linux 5.19 and later); v1 `cpuacct.usage` and
`memory.max_usage_in_bytes`. What a node's kernel does not offer is left out.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from tesk.engine.usage import ExecutorUsage

SCRIPT = """\
in=$1 out=$2 err=$3 n=$4 mark=$5 cg=$6
shift 6
if command -v tee >/dev/null 2>&1; then
  exec 4>&1
  rc=$( { { "$@" <"$in" 2>"$err" 3>&- 4>&-; echo $? >&3; } | tee "$out" >&4; } 3>&1 )
  exec 4>&-
else
  "$@" <"$in" >"$out" 2>"$err"
  rc=$?
  tail -c "$n" "$out" 2>/dev/null
fi
cpu= mem=
if [ -r "$cg/cpu.stat" ]; then
  while read -r key value; do [ "$key" = usage_usec ] && cpu=$value; done <"$cg/cpu.stat"
  read -r mem 2>/dev/null <"$cg/memory.peak"
elif [ -r "$cg/cpuacct/cpuacct.usage" ]; then
  read -r ns <"$cg/cpuacct/cpuacct.usage" && cpu=$((ns / 1000))
  read -r mem 2>/dev/null <"$cg/memory/memory.max_usage_in_bytes"
fi
printf '\\n%s\\n' "$mark"
tail -c "$n" "$err" 2>/dev/null
printf '\\n%s-usage\\n%s %s\\n' "$mark" "${cpu:--}" "${mem:--}"
exit "${rc:-1}"
"""
"""$1..$6: stdin path, stdout path, stderr path, tail bytes, marker, cgroup directory; then the
command."""

CGROUP_ROOT = "/sys/fs/cgroup"
"""Where a container sees its own cgroup (its cgroup namespace on v2; runc's mounts on v1)."""

ARGV0 = "tesk-executor"


@dataclass(frozen=True)
class StreamPaths:
    stdin: str
    stdout: str
    stderr: str


def new_marker(job_uid: str | None = None, index: int = 0) -> str:
    """The line between the stdout and stderr tails. For a task's executor it is derived from its
    Job's uid (which the executor cannot read) and its index, so a taskmaster that adopts a pod
    another one started finds it; without a uid, random."""
    if job_uid is None:
        return f"--tesk-stderr-{secrets.token_hex(12)}--"
    digest = hashlib.sha256(f"{job_uid}:{index}".encode()).hexdigest()[:24]
    return f"--tesk-stderr-{digest}--"


def wrapped_command(
    shell: str,
    command: list[str],
    paths: StreamPaths,
    tail_bytes: int,
    marker: str,
    cgroup: str = CGROUP_ROOT,
) -> list[str]:
    """The container command: `shell -c SCRIPT ARGV0 <paths> <tail> <marker> <cgroup> cmd...`."""
    return [
        shell,
        "-c",
        SCRIPT,
        ARGV0,
        paths.stdin,
        paths.stdout,
        paths.stderr,
        str(tail_bytes),
        marker,
        cgroup,
        *command,
    ]


def split_tails(log: str, marker: str, tail_bytes: int) -> tuple[str, str]:
    """(stdout tail, stderr tail) from the pod log the script wrote.

    Without the marker (the container was killed before the script printed it) the log is what
    the shell itself said, kept as stderr.
    """
    separator = f"\n{marker}\n"
    log = log.partition(_usage_separator(marker))[0]
    head, found, tail = log.partition(separator)
    if not found:
        return "", _last(log, tail_bytes)
    return _last(head, tail_bytes), _last(tail, tail_bytes)


def split_usage(log: str, marker: str) -> ExecutorUsage | None:
    """What the script read of the container's cgroup; None when it read nothing (or was killed
    before it could say)."""
    _, found, rest = log.rpartition(_usage_separator(marker))
    if not found:
        return None
    fields = rest.split()
    if len(fields) != 2 or not fields[0].isdigit():
        return None
    cpu_seconds = int(fields[0]) / 1e6
    peak = int(fields[1]) if fields[1].isdigit() else None
    return ExecutorUsage(cpu_seconds=cpu_seconds, peak_memory_bytes=peak)


def _usage_separator(marker: str) -> str:
    return f"\n{marker}-usage\n"


def _last(text: str, limit: int) -> str:
    if limit <= 0:
        return ""
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[-limit:].decode(errors="ignore")


def escape(text: str) -> str:
    """Protect `text` from Kubernetes' `$(VAR)` expansion of command, args and env values."""
    return text.replace("$", "$$")
