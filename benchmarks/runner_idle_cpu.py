"""CPU of the local runner while tasks are created and no runner slot is free.

    python -m benchmarks.runner_idle_cpu [--tasks 2000] [--clients 8] [--slots 4] [--rounds 3]

A fresh `tesk serve` (2 API workers, SQLite, bwrap) first gets `--slots` long `sleep` tasks,
which fill every slot of its runner (local.max_concurrent_tasks). Then `--clients` clients create
`--tasks` more `sleep` tasks as fast as the API takes them: none of them can start, so whatever the
serving process (the runner; the API runs in its gunicorn children) spends meanwhile is overhead.
Its CPU is read from /proc/<pid>/stat (utime + stime) before and after and divided by the wall
time: cores used. Two baselines from the same run: the serving process over as long a time with no
creates at all (its idle cost), and the API workers over the creates (what the load itself costs).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from typing import Any

import requests

from benchmarks.common import cpu_of, cpu_seconds, descendants, write_report
from benchmarks.load import create_tasks, hammer, served
from benchmarks.served import ServedTesk

SLEEP = {"executors": [{"image": "busybox", "command": ["sleep", "3600"]}]}


def fill_slots(server: ServedTesk, slots: int) -> list[str]:
    with requests.Session() as session:
        ids = [
            session.post(f"{server.url}/tasks", json=SLEEP, timeout=30).json()["id"]
            for _ in range(slots)
        ]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            states = [
                session.get(f"{server.url}/tasks/{task_id}", timeout=30).json()["state"]
                for task_id in ids
            ]
            if all(state == "RUNNING" for state in states):
                return ids
            time.sleep(0.1)
    raise RuntimeError(f"the slot-filling tasks did not all start: {states}")


def api_processes(server: ServedTesk) -> list[int]:
    assert server.process is not None
    return [
        pid for pid in descendants(server.process.pid) if b"gunicorn" in _cmdline(pid)
    ]  # the gunicorn master and its workers, not executors


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def measure(server: ServedTesk, tasks: int, clients: int) -> dict[str, float]:
    assert server.process is not None
    serving = server.process.pid
    api = api_processes(server)
    run = uuid.uuid4().hex

    cpu0, api0, wall0 = cpu_seconds(serving), sum(cpu_of(api)), time.perf_counter()
    created = create_tasks_sleeping(server.url, tasks, clients, run)
    cpu1, api1, wall1 = cpu_seconds(serving), sum(cpu_of(api)), time.perf_counter()
    if created.errors or len(set(created.ids)) != tasks:
        raise RuntimeError(f"creates failed: {created.errors[:3]}")
    busy_s = wall1 - wall0

    time.sleep(1.5)  # let the runner settle whatever the burst left (it has no free slot)
    idle0 = cpu_seconds(serving)
    time.sleep(busy_s)
    idle1 = cpu_seconds(serving)
    return {
        "seconds": busy_s,
        "creates_per_s": tasks / busy_s,
        "runner_cores": (cpu1 - cpu0) / busy_s,
        "idle_cores": (idle1 - idle0) / busy_s,
        "api_cores": (api1 - api0) / busy_s,
    }


def create_tasks_sleeping(url: str, total: int, clients: int, run: str) -> Any:
    def send(session: requests.Session, index: int) -> requests.Response:
        body = {"name": f"idle-{index}", "tags": {"idle": run}, **SLEEP}
        return session.post(f"{url}/tasks", json=body, timeout=120)

    return hammer(total, clients, send)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--slots", type=int, default=4, help="local.max_concurrent_tasks")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    custom = {"local": {"max_concurrent_tasks": args.slots}}
    rows = []
    with served("sqlite", custom=custom) as server:
        fill_slots(server, args.slots)
        create_tasks(server.url, 50, 4, "warm-up")  # imports, connections, page cache
        for _ in range(args.rounds):
            rows.append(measure(server, args.tasks, args.clients))
    lines = [
        f"{args.tasks} CreateTask of `sleep` tasks from {args.clients} clients per round, "
        f"{args.slots} runner slots all busy, 2 API workers, SQLite; cores = CPU s / wall s",
        "",
        "| round | creates/s | runner (serving process) | same process, no creates | API workers |",
        "|---|---|---|---|---|",
        *(
            f"| {i + 1} | {r['creates_per_s']:.0f} | {r['runner_cores']:.3f} "
            f"| {r['idle_cores']:.3f} | {r['api_cores']:.2f} |"
            for i, r in enumerate(rows)
        ),
        f"| median | {statistics.median(r['creates_per_s'] for r in rows):.0f} "
        f"| {statistics.median(r['runner_cores'] for r in rows):.3f} "
        f"| {statistics.median(r['idle_cores'] for r in rows):.3f} "
        f"| {statistics.median(r['api_cores'] for r in rows):.2f} |",
        "",
        f"load average after the run: {', '.join(f'{x:.2f}' for x in os.getloadavg())}",
    ]
    print("\n".join(lines))
    write_report("runner-idle-cpu", "Local runner CPU with every slot busy", __doc__ or "", lines)


if __name__ == "__main__":
    main()
