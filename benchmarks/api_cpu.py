"""CPU time per API request of a live `tesk serve`, against bare Flask and the FOCA stub.

    python -m benchmarks.api_cpu [--rounds 2] [--seconds 4] [--workers 2] [--stores sqlite,postgres]

Request rates on a machine shared with other work move with that work; the CPU time a server's
processes spend per request moves much less, so this is the steadier way to see where an API
request's cost lies. The servers are those of benchmarks/api_throughput.py: the bare Flask app,
the FOCA stub (FOCA and Connexion as TESK configures them, with constant controllers) and a fresh
`tesk serve` per store, each under the gunicorn options of `tesk serve`. For each call
(POST /tasks of a `sleep` task, GET /tasks/{id}?view=MINIMAL) and server, wrk (2 threads,
16 connections) runs for `--seconds` while the user and system CPU time of the server's whole
process tree (/proc/<pid>/stat: the gunicorn master and workers; for TESK also its serving
process, which runs the local runner) is read before and after; the difference divided by the
requests answered is the CPU per request. Reported: the median over the rounds, and what the CPU
alone would make of the rate targets, bare / server (the rate ratio of two servers that each had
the same cores to themselves). The PostgreSQL server's own CPU is not counted.
"""

from __future__ import annotations

import argparse
import os
import statistics
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.api_throughput import (
    BARE_APP,
    POST_LUA,
    POST_SCRIPT,
    STUB_APP,
    baseline_app,
    targets,
    wrk,
)
from benchmarks.common import cpu_of, descendants, write_report
from benchmarks.load import POSTGRES_ENV, served

CALLS = ("POST /tasks", "GET MINIMAL")


@dataclass
class Samples:
    user: list[float] = field(default_factory=list)  # µs per request
    system: list[float] = field(default_factory=list)
    rate: list[float] = field(default_factory=list)

    def total(self) -> float:
        return statistics.median(u + s for u, s in zip(self.user, self.system, strict=True))


def tree_cpu(root: int) -> tuple[float, float]:
    return cpu_of([root, *descendants(root)])


def measure(url: str, script: Path | None, root: int, seconds: int, into: Samples) -> None:
    user0, system0 = tree_cpu(root)
    rate, _ = wrk(url, seconds, script)
    user1, system1 = tree_cpu(root)
    answered = rate * seconds
    into.user.append((user1 - user0) / answered * 1e6)
    into.system.append((system1 - system0) / answered * 1e6)
    into.rate.append(rate)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--stores", default="sqlite,postgres")
    args = parser.parse_args()
    stores = [s for s in args.stores.split(",") if s != "postgres" or os.environ.get(POSTGRES_ENV)]
    POST_SCRIPT.write_text(POST_LUA)
    samples: dict[tuple[str, str], Samples] = {}
    with ExitStack() as stack:
        servers: dict[str, tuple[dict[str, tuple[str, Path | None]], int]] = {}
        for name, app in (("bare Flask", BARE_APP), ("FOCA stub", STUB_APP)):
            baseline = stack.enter_context(baseline_app(app, args.workers, {}))
            servers[name] = (dict(targets(baseline.root)), baseline.pid)
        for store in stores:
            server = stack.enter_context(served(store, args.workers))
            assert server.process is not None
            servers[f"TESK ({store})"] = (dict(targets(server.url)), server.process.pid)
        for _ in range(args.rounds):
            for call in CALLS:
                for name, (calls, root) in servers.items():
                    url, script = calls[call]
                    found = samples.setdefault((call, name), Samples())
                    measure(url, script, root, args.seconds, found)
    POST_SCRIPT.unlink()
    lines = [
        f"{args.workers} gunicorn workers (options of `tesk serve`), wrk 2 threads x 16 "
        f"connections, {args.rounds} rounds of {args.seconds} s per call and server; "
        f"load average at the end {', '.join(f'{x:.2f}' for x in os.getloadavg())}",
        "",
        "| call | server | req/s | user µs/request | system µs/request | CPU µs/request "
        "| bare / server |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for call in CALLS:
        bare = samples[(call, "bare Flask")].total()
        for name in servers:
            found = samples[(call, name)]
            lines.append(
                f"| {call} | {name} | {statistics.median(found.rate):.0f} "
                f"| {statistics.median(found.user):.0f} | {statistics.median(found.system):.0f} "
                f"| {found.total():.0f} | {bare / found.total():.2f} |"
            )
    print("\n".join(lines))
    write_report("api-cpu", "CPU time per API request", __doc__ or "", lines)


if __name__ == "__main__":
    main()
