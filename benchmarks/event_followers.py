"""GetTask latency and CPU with 200 followers of task events and executor output attached.

    python -m benchmarks.event_followers [--followers 200] [--log-followers 100] [--gets 2000]
        [--idle 15] [--store S]

A fresh `tesk serve` (2 API workers, bwrap, default streams settings: followers look again every
0.5 s, keepalives every 15 s) runs one long task (one runner slot: it prints a line, then sleeps)
and gets half of the `--followers - --log-followers` event followers as tasks that stay QUEUED.
Then, in one run:

1. baseline: GetTask (BASIC) latency, `--gets` sequential requests on one keep-alive connection;
   and the CPU of TESK's processes (serving process, gunicorn master and workers, from
   /proc/<pid>/stat) and of the whole machine (/proc/stat) over `--idle` seconds of nothing;
2. `--followers` streams opened at once: `--log-followers` on the running task's stdout
   (`follow=true`), of the others half on the queued tasks' own event streams, half on /events;
   CPU again over `--idle` idle seconds with every follower attached, then GetTask latency again;
3. the followers closed, GetTask latency once more (the baseline after).

Every follower must have its stream open (it read the opening comment, or the running task's first
line) or the run fails. The
figures, not assertions, go to docs/benchmarks/event_followers.md; docs/performance.md reads them.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from benchmarks.common import cpu_of, descendants, write_report
from benchmarks.load import served
from benchmarks.served import ServedTesk

SLEEP = {"name": "bench-events", "executors": [{"image": "busybox", "command": ["sleep", "3600"]}]}
TALKER = {
    "name": "bench-output",
    "executors": [{"image": "busybox", "command": ["sh", "-c", "echo started; sleep 3600"]}],
}


@dataclass
class Latency:
    p50_ms: float
    p99_ms: float

    def __str__(self) -> str:
        return f"p50 {self.p50_ms:.2f} ms, p99 {self.p99_ms:.2f} ms"


def get_latency(server: ServedTesk, task_id: str, count: int) -> Latency:
    times: list[float] = []
    with requests.Session() as session:
        url = f"{server.url}/tasks/{task_id}"
        for _ in range(20):  # warm the connection and the worker
            session.get(url, params={"view": "BASIC"}, timeout=30).raise_for_status()
        for _ in range(count):
            start = time.perf_counter()
            session.get(url, params={"view": "BASIC"}, timeout=30).raise_for_status()
            times.append((time.perf_counter() - start) * 1000)
    cuts = statistics.quantiles(times, n=100)
    return Latency(cuts[49], cuts[98])


def tesk_pids(server: ServedTesk) -> list[int]:
    assert server.process is not None
    pids = [server.process.pid, *descendants(server.process.pid)]
    return [pid for pid in pids if _is_tesk(pid)]  # not the executors' sandboxes


def _is_tesk(pid: int) -> bool:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"tesk" in command or b"gunicorn" in command


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of every CPU so far."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def idle_cpu(server: ServedTesk, seconds: float) -> tuple[float, float]:
    """(cores TESK's processes used, share of the machine busy) over `seconds` of waiting."""
    pids = tesk_pids(server)
    before = sum(cpu_of(pids))
    busy_before, total_before = machine_busy()
    start = time.monotonic()
    time.sleep(seconds)
    wall = time.monotonic() - start
    after = sum(cpu_of(pids))
    busy_after, total_after = machine_busy()
    share = (busy_after - busy_before) / max(1, total_after - total_before)
    return (after - before) / wall, share


class Followers:
    """A child process holding the event streams open (its threads would otherwise compete with
    the latency measurement for this process's GIL); it prints how many opened, then reads."""

    def __init__(self, server: ServedTesk, paths: list[str]) -> None:
        self._urls = [server.url + p for p in paths]
        self._process: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 120.0) -> int:
        """Start following; the number of streams attached (each read its opening comment)."""
        self._process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.event_followers", "--follow", *self._urls],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        return int(line) if line.strip().isdigit() else 0

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait(30)


def follow(urls: list[str]) -> None:
    """The child: open every stream at once, report how many attached, read until killed."""
    attached = threading.Semaphore(0)

    def one(url: str) -> None:
        try:
            response = requests.get(url, stream=True, timeout=(30, None))
            lines = response.iter_lines()
            if response.status_code != 200:
                print(f"{url}: {response.status_code} {response.text[:200]}", file=sys.stderr)
            else:
                next(lines)  # the opening comment (events), the task's first line (output)
                attached.release()
            for _ in lines:
                pass
        except Exception:
            return

    for url in urls:
        threading.Thread(target=one, args=(url,), daemon=True).start()
    count = 0
    deadline = time.monotonic() + 60
    while count < len(urls) and attached.acquire(timeout=max(0.0, deadline - time.monotonic())):
        count += 1
    print(count, flush=True)
    threading.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--followers", type=int, default=200)
    parser.add_argument(
        "--log-followers", type=int, default=100, help="of --followers, on executor output"
    )
    parser.add_argument("--gets", type=int, default=2000)
    parser.add_argument("--idle", type=float, default=15.0)
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--follow", nargs="+", help=argparse.SUPPRESS)  # the followers' process
    args = parser.parse_args()
    if args.follow:
        follow(args.follow)
        return
    log_followers = min(args.log_followers, args.followers)
    per_task = (args.followers - log_followers) // 2
    custom = {"local": {"max_concurrent_tasks": 1}}
    with served(args.store, workers=2, custom=custom) as server, requests.Session() as session:
        blocker = session.post(f"{server.url}/tasks", json=TALKER, timeout=30).json()["id"]
        ids = [
            session.post(f"{server.url}/tasks", json=SLEEP, timeout=30).json()["id"]
            for _ in range(per_task)
        ]
        time.sleep(2.0)  # the runner took the blocker; everything else stays QUEUED
        before = get_latency(server, ids[0], args.gets)
        base_cores, base_machine = idle_cpu(server, args.idle)

        paths = [f"/tasks/{blocker}/executors/0/stdout?follow=true"] * log_followers
        paths += [f"/tasks/{task_id}/events" for task_id in ids]
        paths += ["/events"] * (args.followers - log_followers - per_task)
        followers = Followers(server, paths)
        opened = followers.start()
        if opened != len(paths):
            followers.stop()
            raise SystemExit(f"only {opened} of {len(paths)} streams opened")
        time.sleep(2.0)
        with_cores, with_machine = idle_cpu(server, args.idle)
        during = get_latency(server, ids[0], args.gets)
        followers.stop()
        time.sleep(1.0)
        after = get_latency(server, ids[0], args.gets)
        session.post(f"{server.url}/tasks/{blocker}:cancel", timeout=30)

    lines = [
        f"- store: {args.store}; 2 API workers; streams: poll 0.5 s, keepalive 15 s",
        f"- followers: {len(paths)} ({log_followers} on a running executor's stdout, "
        f"{per_task} per-task event streams, {len(paths) - log_followers - per_task} on "
        "/events), all attached",
        f"- GetTask (BASIC), {args.gets} sequential, before the followers: {before}",
        f"- GetTask with {len(paths)} followers attached: {during}",
        f"- GetTask after the followers left: {after}",
        f"- TESK's processes, idle, no followers: {base_cores * 100:.2f} % of a core "
        f"(machine busy {base_machine * 100:.1f} %)",
        f"- TESK's processes, idle, {len(paths)} followers: {with_cores * 100:.2f} % of a core "
        f"(machine busy {with_machine * 100:.1f} %)",
    ]
    print("\n".join(lines))
    write_report("event_followers", "Event followers", __doc__ or "", lines)


if __name__ == "__main__":
    main()
