"""ListTasks through HTTP against the same page read at the store, 100,000 tasks on SQLite.

    python -m benchmarks.list_http [--tasks 100000] [--repeat 40]

The SQLite file of a fresh data dir is filled with the tasks of benchmarks/list_tasks.py, then a
`tesk serve` (2 workers, bwrap) serves it. Each run times the first page of 256 tasks, MINIMAL and
BASIC, once through `GET /tasks` (one keep-alive connection, the full response read and parsed)
and once as `SqlStore.list_documents` on the same file in this process, taking turns, so that the
ratio HTTP / store of the same run shows what the API adds to the store's read.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests
import sqlalchemy as sa

from benchmarks.common import write_report
from benchmarks.list_tasks import PAGE, fill, generate
from benchmarks.served import ServedTesk
from tesk.store.base import TaskQuery
from tesk.store.sql import SqlStore


def timed(call: Callable[[], object], repeat: int) -> float:
    """p50 in ms of `repeat` calls after 3 warm-up calls."""
    for _ in range(3):
        call()
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        call()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=40)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="tesk-list-http-", dir="/var/tmp"))
    lines = [
        f"{args.tasks:,} tasks on SQLite, first page of {PAGE}, p50 of {args.repeat} runs",
        "",
        "| view | store ms | HTTP ms | HTTP / store |",
        "|---|---:|---:|---:|",
    ]
    try:
        data_dir = root / "data"
        data_dir.mkdir()
        url = sa.URL.create("sqlite", database=str(data_dir / "tesk.db"))
        fill(url, generate(args.tasks))
        server = ServedTesk(data_dir).start()
        store = SqlStore(url)
        session = requests.Session()
        try:
            for view in ("MINIMAL", "BASIC"):
                query = TaskQuery(PAGE, with_documents=view != "MINIMAL")
                params = {"view": view, "page_size": PAGE}

                def over_http(params: dict[str, object] = params) -> object:
                    response = session.get(f"{server.url}/tasks", params=params, timeout=60)
                    response.raise_for_status()
                    return response.json()

                def at_store(query: TaskQuery = query) -> object:
                    return store.list_documents(query)

                http_ms, store_ms = [], []
                for _ in range(4):  # alternate in blocks, so load changes hit both alike
                    store_ms.append(timed(at_store, args.repeat // 4))
                    http_ms.append(timed(over_http, args.repeat // 4))
                s, h = statistics.median(store_ms), statistics.median(http_ms)
                lines.append(f"| {view} | {s:.2f} | {h:.2f} | {h / s:.1f} |")
        finally:
            store.close()
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    lines.append("")
    lines.append(f"load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("\n".join(lines))
    write_report("list-http", "ListTasks through HTTP", __doc__ or "", lines)


if __name__ == "__main__":
    main()
