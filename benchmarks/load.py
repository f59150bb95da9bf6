"""Load on a live `tesk serve`: many clients creating tasks at once, then listing them all.

Run: `python -m benchmarks.load [--tasks N] [--clients C]` (from the repository root, after
`make install`; PostgreSQL too when TESK_TEST_POSTGRES_URL is set, as scripts/test-setup.sh does).

Each store gets a fresh `tesk serve` (2 API workers, the local backend with bwrap, SQLite in its
data dir or a fresh PostgreSQL schema). Tasks are trivial (`true`): the local runner executes them
while the load runs, as it would in production, so the figures include its writes to the store.
Reported: CreateTask throughput and latency percentiles, the time to page through every task, and
as the baseline of the same run the throughput of GetServiceInfo (the framework without the store).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa

from benchmarks.served import ServedTesk
from tesk.store.database import parse_url

POSTGRES_ENV = "TESK_TEST_POSTGRES_URL"


@dataclass
class LoadResult:
    ids: list[str] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def throughput(self) -> float:
        return len(self.latencies_s) / self.elapsed_s if self.elapsed_s else 0.0

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def task_body(run: str, index: int) -> dict[str, Any]:
    return {
        "name": f"load-{index}",
        "tags": {"load": run},
        "executors": [{"image": "busybox", "command": ["true"]}],
    }


def hammer(
    total: int,
    clients: int,
    send: Callable[[requests.Session, int], requests.Response],
) -> LoadResult:
    """`total` requests from `clients` threads, each with its own connection."""
    result = LoadResult()
    lock = threading.Lock()
    counter = iter(range(total))

    def client() -> None:
        session = requests.Session()
        while True:
            with lock:
                index = next(counter, None)
            if index is None:
                return
            start = time.perf_counter()
            try:
                response = send(session, index)
            except requests.RequestException as exc:
                with lock:
                    result.errors.append(f"{type(exc).__name__}: {exc}")
                continue
            took = time.perf_counter() - start
            with lock:
                result.latencies_s.append(took)
                result.statuses[response.status_code] += 1
                if response.status_code == 200 and response.request.method == "POST":
                    result.ids.append(response.json()["id"])
                elif response.status_code >= 500:
                    result.errors.append(f"{response.status_code}: {response.text[:200]}")

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.elapsed_s = time.perf_counter() - began
    return result


def create_tasks(url: str, total: int, clients: int, run: str) -> LoadResult:
    def send(session: requests.Session, index: int) -> requests.Response:
        return session.post(f"{url}/tasks", json=task_body(run, index), timeout=120)

    return hammer(total, clients, send)


def service_info(url: str, total: int, clients: int) -> LoadResult:
    def send(session: requests.Session, _index: int) -> requests.Response:
        return session.get(f"{url}/service-info", timeout=120)

    return hammer(total, clients, send)


def list_all(url: str, run: str, page_size: int = 2047) -> tuple[list[str], float]:
    """Every task of this run (tag `load`), paged; and how long it took."""
    ids: list[str] = []
    token: str | None = None
    began = time.perf_counter()
    with requests.Session() as session:
        while True:
            params: dict[str, Any] = {"tag_key": "load", "tag_value": run, "page_size": page_size}
            if token:
                params["page_token"] = token
            response = session.get(f"{url}/tasks", params=params, timeout=120)
            response.raise_for_status()
            page = response.json()
            ids += [task["id"] for task in page["tasks"]]
            token = page.get("next_page_token")
            if not token:
                return ids, time.perf_counter() - began


@contextmanager
def postgres_schema(admin_url: str) -> Iterator[str]:
    """A fresh schema in the test database; yields a store URL that uses it."""
    schema = f"tesk_load_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(parse_url(admin_url))
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = sa.make_url(admin_url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@contextmanager
def served(
    store: str,
    workers: int = 2,
    custom: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[ServedTesk]:
    """A fresh `tesk serve` with `store` (sqlite or postgres) and a data dir of its own."""
    root = Path(tempfile.mkdtemp(prefix="tesk-load-", dir="/var/tmp"))
    root.chmod(0o711)
    try:
        with _store_url(store) as store_url:
            server = ServedTesk(
                root / "data",
                custom=custom or {},
                store_url=store_url,
                workers=workers,
                env=env or {},
            )
            server.start()
            try:
                yield server
            finally:
                server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def _store_url(store: str) -> Iterator[str | None]:
    if store == "sqlite":
        yield None
        return
    admin = os.environ.get(POSTGRES_ENV)
    if not admin:
        raise RuntimeError(f"{POSTGRES_ENV} is not set")
    with postgres_schema(admin) as url:
        yield url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--runner-concurrency", type=int, default=4, help="local.max_concurrent_tasks"
    )
    args = parser.parse_args()
    custom = {"local": {"max_concurrent_tasks": args.runner_concurrency}}
    stores = ["sqlite"] + (["postgres"] if os.environ.get(POSTGRES_ENV) else [])
    print(
        f"{args.tasks} CreateTask from {args.clients} clients, {args.workers} API workers, "
        f"runner concurrency {args.runner_concurrency}"
    )
    header = (
        f"{'store':<9} {'create/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
        f"{'5xx':>4} {'listed':>7} {'list s':>7} {'info/s':>8} {'create/info':>11}"
    )
    print(header)
    for store in stores:
        with served(store, args.workers, custom) as server:
            run = uuid.uuid4().hex
            created = create_tasks(server.url, args.tasks, args.clients, run)
            listed, list_s = list_all(server.url, run)
            baseline = service_info(server.url, min(args.tasks, 5000), args.clients)
        server_errors = sum(n for status, n in created.statuses.items() if status >= 500)
        print(
            f"{store:<9} {created.throughput:>9.0f} {created.percentile(0.5) * 1000:>7.1f} "
            f"{created.percentile(0.99) * 1000:>7.1f} {max(created.latencies_s) * 1000:>7.1f} "
            f"{server_errors:>4} {len(set(listed)):>7} {list_s:>7.2f} "
            f"{baseline.throughput:>8.0f} {created.throughput / baseline.throughput:>11.2f}"
        )
        if created.errors:
            print(f"  errors ({len(created.errors)}), first: {created.errors[0]}")
    print(f"load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
