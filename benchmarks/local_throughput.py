"""Trivial tasks end to end through a real `tesk serve`, against bare bwrap runs of the same one.

    python -m benchmarks.local_throughput [--tasks 200] [--clients 8] [--slots 4] [--rounds 3]

Per round, interleaved so that load from elsewhere on the machine hits every series alike:
  - bare bwrap:      `--tasks` runs of `bwrap --dev-bind / / true`, `--slots` at a time (baseline);
  - TESK's sandbox:  the exact bwrap command line TESK builds for an executor, run directly the
                     same way (what TESK's isolation costs by itself);
  - TESK:            `--clients` clients POST `--tasks` tasks running `true` to a `tesk serve`
                     (2 API workers, SQLite, bwrap, local.max_concurrent_tasks = `--slots`); the
                     time from the first POST until every task is COMPLETE (watched by listing
                     the run's tasks, MINIMAL view, every 20 ms).
Reported: each series' median over the rounds and TESK's ratio to bare bwrap. Every round also
checks that exactly `--tasks` distinct tasks were stored and all of them ended COMPLETE.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from benchmarks.common import write_report
from benchmarks.load import hammer, served
from benchmarks.served import ServedTesk
from tesk.backends.local.bwrap import BwrapLauncher
from tesk.backends.local.launcher import Bind, LaunchSpec

COMMAND = ["true"]


def in_parallel(total: int, slots: int, run: Callable[[int], None]) -> float:
    began = time.perf_counter()
    with ThreadPoolExecutor(slots) as pool:
        for future in [pool.submit(run, i) for i in range(total)]:
            future.result()
    return time.perf_counter() - began


def bare_bwrap(_index: int) -> None:
    done = subprocess.run(["bwrap", "--dev-bind", "/", "/", *COMMAND], capture_output=True)
    if done.returncode != 0:
        raise RuntimeError(f"bare bwrap failed ({done.returncode}): {done.stderr.decode()}")


def tesk_sandbox(scratch: Path) -> Callable[[int], None]:
    launcher = BwrapLauncher(hidden=[scratch])
    launcher.check()

    def run(index: int) -> None:
        own = scratch / str(index)
        (own / "tmp").mkdir(parents=True, exist_ok=True)
        spec = LaunchSpec(
            name=f"tesk-bench-{index}",
            image="-",
            command=COMMAND,
            binds=[Bind(own / "tmp", "/tmp")],
            workdir="/",
            stdout=own / "out",
            stderr=own / "err",
        )
        outcome = launcher.launch(spec).wait()
        if outcome.exit_code != 0:
            raise RuntimeError(f"TESK's sandbox failed: {outcome}")

    return run


def through_tesk(server: ServedTesk, tasks: int, clients: int) -> float:
    run = uuid.uuid4().hex

    def send(session: requests.Session, index: int) -> requests.Response:
        body: dict[str, Any] = {
            "name": f"trivial-{index}",
            "tags": {"trivial": run},
            "executors": [{"image": "busybox", "command": COMMAND}],
        }
        return session.post(f"{server.url}/tasks", json=body, timeout=120)

    began = time.perf_counter()
    created = hammer(tasks, clients, send)
    if created.errors or len(set(created.ids)) != tasks:
        raise RuntimeError(f"{len(set(created.ids))} of {tasks} created: {created.errors[:3]}")
    params: dict[str, Any] = {"tag_key": "trivial", "tag_value": run, "page_size": 2047}
    params["view"] = "MINIMAL"
    with requests.Session() as session:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            listed = session.get(f"{server.url}/tasks", params=params, timeout=120).json()
            states = [task["state"] for task in listed["tasks"]]
            if len(states) == tasks and all(
                s not in ("QUEUED", "INITIALIZING", "RUNNING") for s in states
            ):
                took = time.perf_counter() - began
                break
            time.sleep(0.02)
        else:
            raise RuntimeError(f"tasks not done after 600 s: {sorted(set(states))}")
    ids = {task["id"] for task in listed["tasks"]}
    if ids != set(created.ids) or set(states) != {"COMPLETE"}:
        raise RuntimeError(f"{len(ids)} tasks listed, states {sorted(set(states))}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--slots", type=int, default=4, help="local.max_concurrent_tasks")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("bwrap") is None:
        sys.exit("bwrap is not installed")
    scratch = Path(tempfile.mkdtemp(prefix="tesk-bench-", dir="/var/tmp"))
    series: dict[str, list[float]] = {"bare bwrap": [], "TESK's sandbox": [], "TESK": []}
    try:
        sandbox = tesk_sandbox(scratch)
        with served("sqlite", custom={"local": {"max_concurrent_tasks": args.slots}}) as server:
            through_tesk(server, min(args.tasks, 20), args.clients)  # warm-up
            for _ in range(args.rounds):
                series["bare bwrap"].append(in_parallel(args.tasks, args.slots, bare_bwrap))
                series["TESK's sandbox"].append(in_parallel(args.tasks, args.slots, sandbox))
                series["TESK"].append(through_tesk(server, args.tasks, args.clients))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    baseline = statistics.median(series["bare bwrap"])
    lines = [
        f"{args.tasks} tasks running `true`, {args.slots} at a time; TESK: {args.clients} clients, "
        f"2 API workers, SQLite, bwrap; {args.rounds} interleaved rounds",
        "",
        "| series | "
        + " | ".join(f"round {i + 1}" for i in range(args.rounds))
        + " | median | vs bare bwrap |",
        "|---|" + "---|" * (args.rounds + 2),
        *(
            f"| {name} | "
            + " | ".join(f"{s:.2f} s" for s in samples)
            + f" | {statistics.median(samples):.2f} s "
            f"| {statistics.median(samples) / baseline:.1f} x |"
            for name, samples in series.items()
        ),
        "",
        f"load average after the run: {', '.join(f'{x:.2f}' for x in os.getloadavg())}",
    ]
    print("\n".join(lines))
    write_report("local-throughput", "Trivial tasks end to end", __doc__ or "", lines)


if __name__ == "__main__":
    main()
