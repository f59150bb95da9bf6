"""Separate stdout and stderr of an executor, which Kubernetes' pod log merges.

The executor's command runs under a short POSIX shell script (the image's `/bin/sh`): stdout and
stderr go to files (the paths the task asked for, else files on the task volume). Stdout is also
copied to the container's stdout as it is written (`tee`), so the pod log shows it live (the API
serves it, output.py); an image without `tee` gets the file only, and its tail at the end. Once
the command has ended the script prints a line with a marker only this pod knows and the tail of
stderr, then exits with the command's exit code. The taskmaster reads the pod log once the
container has terminated and splits it at the marker. The user's command is passed as separate
arguments ("$@"), never parsed by the shell.

With `tee`, the command's stdout is a pipe rather than a file, and the executor ends when
everything holding that pipe has closed it (a background process the command leaves running with
stdout open keeps the executor running).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

SCRIPT = """\
in=$1 out=$2 err=$3 n=$4 mark=$5
shift 5
if command -v tee >/dev/null 2>&1; then
  exec 4>&1
  rc=$( { { "$@" <"$in" 2>"$err" 3>&- 4>&-; echo $? >&3; } | tee "$out" >&4; } 3>&1 )
  exec 4>&-
else
  "$@" <"$in" >"$out" 2>"$err"
  rc=$?
  tail -c "$n" "$out" 2>/dev/null
fi
printf '\\n%s\\n' "$mark"
tail -c "$n" "$err" 2>/dev/null
exit "${rc:-1}"
"""
"""$1..$5: stdin path, stdout path, stderr path, tail bytes, marker; then the command."""

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
    shell: str, command: list[str], paths: StreamPaths, tail_bytes: int, marker: str
) -> list[str]:
    """The container command: `shell -c SCRIPT ARGV0 <paths> <tail> <marker> command...`."""
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
        *command,
    ]


def split_tails(log: str, marker: str, tail_bytes: int) -> tuple[str, str]:
    """(stdout tail, stderr tail) from the pod log the script wrote.

    Without the marker (the container was killed before the script printed it) the log is what
    the shell itself said, kept as stderr.
    """
    separator = f"\n{marker}\n"
    head, found, tail = log.partition(separator)
    if not found:
        return "", _last(log, tail_bytes)
    return _last(head, tail_bytes), _last(tail, tail_bytes)


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
