"""What logs and metrics cost: the API with and without them, and /metrics as tasks pile up.

    python -m benchmarks.observability [--rounds 5] [--requests 200]

1. Overhead. Two apps over two SQLite stores: one as `tesk serve` builds it (the store wrapped
   by ObservedStore, request hooks, Prometheus recorder, a request line and a transition line
   written per request), one with neither (bare store, metrics and request lines off). Rounds
   alternate between them; each round times CreateTask and GetTask through Flask's test client.
   Figure: instrumented time / bare time, per operation (1.00 = free).
2. Scrape. /metrics reads the tasks in each active state from the store. With 0, 1,000 and
   10,000 QUEUED tasks in SQLite, a scrape is timed against a GetTask on the same store.
   Figure: scrape time / GetTask time.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from flask.testing import FlaskClient

from tesk.app import create_app
from tesk.config import CustomConfig, LoggingConfig, MetricsConfig
from tesk.observability.logs import TeskFormatter
from tesk.observability.wiring import observe_store
from tesk.store.base import TaskRecord, TaskStore
from tesk.store.sql import SqlStore
from tesk.tes.models import Task
from tesk.tes.states import State
from tests.fakes.fake_backend import FakeBackend

TASK = {"name": "bench", "executors": [{"image": "alpine", "command": ["true"]}]}


def client(store: TaskStore, custom: CustomConfig) -> FlaskClient:
    app = create_app(custom, store=store, backend=FakeBackend(), check_url=lambda u, o: None)
    return app.app.test_client()


def timed(action: Callable[[], object], count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        action()
    return (time.perf_counter() - start) / count


def overhead(root: Path, rounds: int, requests: int) -> None:
    on = CustomConfig(data_dir=root / "on")
    off = CustomConfig(
        data_dir=root / "off",
        metrics=MetricsConfig(enabled=False),
        logging=LoggingConfig(requests=False),
    )
    apps = {
        "instrumented": client(observe_store(SqlStore.from_config(on), on), on),
        "bare": client(SqlStore.from_config(off), off),
    }
    # After the apps exist (building one re-applies FOCA's log config): lines are formatted and
    # written, to a sink that costs nothing itself.
    devnull = logging.FileHandler(os.devnull)
    devnull.setFormatter(TeskFormatter("[{asctime}: {levelname:<8}] {message} [{name}]", style="{"))
    logging.getLogger().handlers = [devnull]
    logging.getLogger().setLevel(logging.INFO)
    samples: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        for name, api in apps.items():
            ids: list[str] = []

            def create(api: FlaskClient = api, ids: list[str] = ids) -> None:
                ids.append(api.post("/ga4gh/tes/v1/tasks", json=TASK).get_json()["id"])

            samples.setdefault((name, "CreateTask"), []).append(timed(create, requests))
            path = f"/ga4gh/tes/v1/tasks/{ids[-1]}"
            samples.setdefault((name, "GetTask"), []).append(
                timed(lambda api=api, path=path: api.get(path), requests)
            )
    print("overhead of logs and metrics (median of rounds):")
    for operation in ("CreateTask", "GetTask"):
        bare = statistics.median(samples[("bare", operation)])
        instrumented = statistics.median(samples[("instrumented", operation)])
        print(
            f"  {operation:<10} bare {bare * 1e3:6.2f} ms  instrumented "
            f"{instrumented * 1e3:6.2f} ms  ratio {instrumented / bare:.2f}"
        )


def scrape(root: Path, rounds: int) -> None:
    custom = CustomConfig(data_dir=root / "scrape", logging=LoggingConfig(requests=False))
    store = SqlStore.from_config(custom)
    api = client(store, custom)
    task_id = api.post("/ga4gh/tes/v1/tasks", json=TASK).get_json()["id"]
    print("/metrics scrape against GetTask on the same store (median of rounds):")
    queued = 1
    for target in (1, 1_000, 10_000):
        for created_us in range(queued, target):
            store.create(_record(created_us))
        queued = target
        metrics = [timed(lambda: api.get("/metrics"), 5) for _ in range(rounds)]
        gets = [timed(lambda: api.get(f"/ga4gh/tes/v1/tasks/{task_id}"), 20) for _ in range(rounds)]
        ratio = statistics.median(metrics) / statistics.median(gets)
        print(
            f"  {target:>6} QUEUED tasks: scrape {statistics.median(metrics) * 1e3:7.2f} ms"
            f"  = {ratio:6.1f} x GetTask"
        )


def _record(created_us: int) -> TaskRecord:
    task_id = str(uuid.uuid4())
    task = Task.model_validate({**TASK, "id": task_id})
    return TaskRecord(id=task_id, state=State.QUEUED, created_us=created_us, task=task)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tesk-bench-") as tmp:
        overhead(Path(tmp), args.rounds, args.requests)
        scrape(Path(tmp), args.rounds)


if __name__ == "__main__":
    main()
