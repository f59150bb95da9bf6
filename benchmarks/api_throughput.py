"""CreateTask and GetTask throughput of a live `tesk serve`, as ratios to a bare Flask app.

    python -m benchmarks.api_throughput [--rounds 5] [--seconds 3] [--workers 2]
        [--stores sqlite,postgres,sqlite:FULL,sqlite:NORMAL] [--sqlite-synchronous FULL|NORMAL]
        [--worker-class gthread|sync]

Two baselines: the bare Flask app of benchmarks/bare_app.py, and benchmarks/foca_stub.py, FOCA
and Connexion serving the TES spec as TESK configures them with controllers that answer
constants (the framework's ceiling). Both run under gunicorn with exactly the options
`tesk serve` gives its own gunicorn (tesk.server.gunicorn_command: worker count, worker class,
the threads that answer requests; not those TESK keeps for stream followers), next to a fresh
`tesk serve` (local backend, bwrap, 2 workers) for each store. Every round measures each call on
every server back to back, so that load from elsewhere on this shared machine weighs on the
baseline and on TESK alike. wrk (2 threads, 16 connections) drives:

- POST /tasks with a task of `sleep 600`: the first tasks fill every runner slot, the others stay
  QUEUED, so the figure is the API's (validation, store, metrics, logs), not the runtime's;
- GET /tasks/{id}?view=MINIMAL and GET /tasks/{id} (the default view, MINIMAL by the spec) of
  one stored task.

Each figure is reported next to the bare app's of the same round; the ratio is TESK / bare.
PostgreSQL is measured when TESK_TEST_POSTGRES_URL is set (scripts/test-setup.sh sets it).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from benchmarks.common import free_port, write_report
from benchmarks.load import POSTGRES_ENV, served
from tesk.server import gunicorn_command
from tesk.settings import (
    DEFAULT_REQUEST_THREADS,
    DEFAULT_WORKER_CLASS,
    ENV_WORKER_CLASS,
    Overrides,
    load_settings,
)

TASK = '{"name": "bench", "executors": [{"image": "busybox", "command": ["sleep", "600"]}]}'
POST_LUA = f"""
wrk.method = "POST"
wrk.body = '{TASK}'
wrk.headers["Content-Type"] = "application/json"
"""
BASE = "/ga4gh/tes/v1"
CALLS = ("POST /tasks", "GET MINIMAL", "GET default")
BARE_APP = "benchmarks.bare_app:app"
STUB_APP = "benchmarks.foca_stub:app"
POST_SCRIPT = Path(tempfile.gettempdir()) / f"tesk-bench-post-{os.getpid()}.lua"


@dataclass
class Figures:
    rates: dict[str, list[float]] = field(default_factory=lambda: {c: [] for c in CALLS})
    non_2xx: int = 0


def wrk(url: str, seconds: int, script: Path | None = None) -> tuple[float, int]:
    """Requests per second and the number of non-2xx answers."""
    command = ["wrk", "-t2", "-c16", f"-d{seconds}s", url]
    if script is not None:
        command[1:1] = ["-s", str(script)]
    out = subprocess.run(command, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed: {out.stdout} {out.stderr}")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)
    if rate is None:
        raise RuntimeError(f"wrk printed no rate: {out.stdout}")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out.stdout)
    return float(rate.group(1)), int(bad.group(1)) if bad else 0


def targets(root: str) -> dict[str, tuple[str, Path | None]]:
    """The URL (and wrk script) of each call against the server at `root` (…/ga4gh/tes/v1)."""
    created = requests.post(
        f"{root}/tasks", data=TASK, headers={"Content-Type": "application/json"}, timeout=30
    )
    created.raise_for_status()
    task_url = f"{root}/tasks/{created.json()['id']}"
    return {
        "POST /tasks": (f"{root}/tasks", POST_SCRIPT),
        "GET MINIMAL": (f"{task_url}?view=MINIMAL", None),
        "GET default": (task_url, None),
    }


@dataclass
class Baseline:
    root: str  # .../ga4gh/tes/v1
    pid: int  # the gunicorn master


@contextmanager
def baseline_app(app: str, workers: int, env: dict[str, str]) -> Iterator[Baseline]:
    """A baseline WSGI app (`module:app`) under gunicorn with the options `tesk serve` uses."""
    port = free_port()
    settings = load_settings(Overrides(port=port), env={})
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        command = gunicorn_command(settings, workers, app, followers=False)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    command = [c for c in command if not c.startswith("tesk.observability")]
    if "--logger-class" in command:
        del command[command.index("--logger-class")]
    root = f"http://127.0.0.1:{port}{BASE}"
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
        try:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"{app} did not start: {log.read().decode()[-2000:]}")
                try:
                    requests.get(f"{root}/tasks/x", timeout=2)
                    break
                except requests.RequestException:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            yield Baseline(root, process.pid)
        finally:
            process.terminate()
            process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--stores", default="sqlite,postgres", help="also sqlite:FULL, sqlite:NORMAL"
    )
    parser.add_argument(
        "--sqlite-synchronous", choices=("FULL", "NORMAL"), help="store.sqlite_synchronous"
    )
    parser.add_argument(
        "--worker-class", choices=("gthread", "sync"), help="TESK_WORKER_CLASS for both servers"
    )
    args = parser.parse_args()
    env = {ENV_WORKER_CLASS: args.worker_class} if args.worker_class else {}
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install wrk, or scripts/test-setup.sh --bench)")
    stores = [s for s in args.stores.split(",") if s != "postgres" or os.environ.get(POSTGRES_ENV)]
    custom: dict[str, Any] = {}
    if args.sqlite_synchronous:
        custom["store"] = {"sqlite_synchronous": args.sqlite_synchronous}
    baselines = {"bare": Figures(), "stub": Figures()}
    tesk = {store: Figures() for store in stores}
    POST_SCRIPT.write_text(POST_LUA)
    with ExitStack() as stack:
        servers = {
            "bare": targets(stack.enter_context(baseline_app(BARE_APP, args.workers, env)).root),
            "stub": targets(stack.enter_context(baseline_app(STUB_APP, args.workers, env)).root),
        }
        for store in stores:
            # `sqlite:FULL`, `sqlite:NORMAL`: SQLite with that store.sqlite_synchronous.
            kind, _, synchronous = store.partition(":")
            options = custom | (
                {"store": {"sqlite_synchronous": synchronous}} if synchronous else {}
            )
            server = stack.enter_context(served(kind, args.workers, options, env))
            servers[store] = targets(server.url)
        # Each call runs on every server back to back, round after round: load from elsewhere
        # on the machine changes within seconds, and so weighs on the baseline and TESK alike.
        for number in range(args.rounds):
            for call in CALLS:
                for name, calls in servers.items():
                    url, script = calls[call]
                    rate, bad = wrk(url, args.seconds, script)
                    figures = baselines[name] if name in baselines else tesk[name]
                    figures.rates[call].append(rate)
                    figures.non_2xx += bad
            print(f"round {number + 1} done", flush=True)
    POST_SCRIPT.unlink()
    lines = report(args, baselines["bare"], baselines["stub"], tesk)
    print("\n".join(lines))
    write_report("api-throughput", "API throughput", __doc__ or "", lines)


def report(
    args: argparse.Namespace, bare: Figures, stub: Figures, tesk: dict[str, Figures]
) -> list[str]:
    sync = f", SQLite synchronous={args.sqlite_synchronous}" if args.sqlite_synchronous else ""
    worker = args.worker_class or DEFAULT_WORKER_CLASS
    sync += f", gunicorn {worker} workers" + (
        f" x {DEFAULT_REQUEST_THREADS} threads" if worker == "gthread" else ""
    )
    errors = bare.non_2xx + stub.non_2xx + sum(f.non_2xx for f in tesk.values())
    lines = [
        f"{args.workers} gunicorn workers (options of `tesk serve`), wrk 2 threads x 16 "
        f"connections, {args.rounds} rounds of {args.seconds} s per call and server{sync}; "
        f"non-2xx: {errors}; "
        f"load average at the end {', '.join(f'{x:.2f}' for x in os.getloadavg())}",
        "",
        "| store | call | bare Flask req/s | FOCA stub req/s | TESK req/s "
        "| TESK / bare per round | TESK / bare | stub / bare | TESK / stub |",
        "|---|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    for store, figures in tesk.items():
        for call in CALLS:
            ours, base, frame = figures.rates[call], bare.rates[call], stub.rates[call]
            ratios = [t / b for t, b in zip(ours, base, strict=True)]
            ceiling = [f / b for f, b in zip(frame, base, strict=True)]
            share = [t / f for t, f in zip(ours, frame, strict=True)]
            lines.append(
                f"| {store} | {call} | {statistics.median(base):.0f} | "
                f"{statistics.median(frame):.0f} | {statistics.median(ours):.0f} | "
                f"{' '.join(f'{r:.2f}' for r in ratios)} | {statistics.median(ratios):.2f} | "
                f"{statistics.median(ceiling):.2f} | {statistics.median(share):.2f} |"
            )
    return lines


if __name__ == "__main__":
    main()
