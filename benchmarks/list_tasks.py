"""ListTasks latency of the SQL store with 100,000 tasks, as ratios to smaller stores.

Run: `python -m benchmarks.list_tasks` (PostgreSQL too when TESK_TEST_POSTGRES_URL is set;
`--tasks N` and `--repeat N` change the size and the number of timed runs).

Every query is timed on three stores filled by the same generator, taking turns run after run:
empty, 10,000 tasks and the full size. The ratio to the empty store is the whole cost of a page
(an empty store returns no task); the ratio to the 10,000-task store compares pages that hold as
many tasks, so it shows what the size of the store alone costs. A timing is one
`SqlStore.list_documents` call, what ListTasks reads: SQL and decoding of the documents
(`--call records` times `SqlStore.list_tasks` instead, which builds pydantic records).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from tesk.store.base import Cursor, TaskQuery, TaskRecord
from tesk.store.database import parse_url
from tesk.store.schema import task_tags, tasks
from tesk.store.sql import SqlStore, tag_rows, task_row
from tesk.tes.models import Task, TaskLog, timestamp
from tesk.tes.states import State

UrlFor = Callable[[str], AbstractContextManager[sa.URL]]
"""A fresh, empty database for a store of the given label, removed afterwards."""

PAGE = 256
SMALL = 10_000
POSTGRES_ENV = "TESK_TEST_POSTGRES_URL"

TOOLS = [
    "bwa-mem",
    "samtools-sort",
    "samtools-index",
    "gatk-haplotypecaller",
    "gatk-genotypegvcfs",
    "fastqc",
    "multiqc",
    "picard-markduplicates",
    "bcftools-filter",
    "vep-annotate",
    "star-align",
    "salmon-quant",
]
PROJECTS = ["1000genomes", "ukbb-pilot", "covid-seq", "rnaseq-atlas", "tumour-normal"]
# Newest tasks still run; older ones have ended, mostly well.
ENDINGS = [State.COMPLETE] * 90 + [State.EXECUTOR_ERROR] * 5 + [State.SYSTEM_ERROR] * 2
ENDINGS += [State.CANCELED] * 3


def generate(count: int, seed: int = 1) -> list[TaskRecord]:
    """`count` tasks as a workflow engine creates them: runs of 50 steps, one per second."""
    rng = random.Random(seed)
    start_us = 1_760_000_000_000_000
    records = []
    for i in range(count):
        run = i // 50
        sample = f"S{run % 997:04d}"
        tool = TOOLS[i % len(TOOLS)]
        task_id = str(uuid.UUID(int=rng.getrandbits(128)))
        created_us = start_us + i * 1_000_000 + rng.randrange(1000)
        if count - i <= 20:
            state = State.RUNNING
        elif count - i <= 40:
            state = State.QUEUED
        else:
            state = rng.choice(ENDINGS)
        tags = {
            "project": PROJECTS[run % len(PROJECTS)],
            "workflow_run": f"run-{run:06d}",
            "sample": sample,
        }
        records.append(
            TaskRecord(
                id=task_id,
                state=state,
                created_us=created_us,
                task=_document(task_id, f"{tool}-{sample}", tool, sample, tags),
                name=f"{tool}-{sample}",
                log=_log(state, sample) if state is not State.QUEUED else None,
                seq=6 if state is not State.QUEUED else 0,
                worker=f"runner-{i % 4}",
                tags=tags,
            )
        )
    return records


def _document(task_id: str, name: str, tool: str, sample: str, tags: dict[str, str]) -> Task:
    bucket = f"s3://{tags['project']}-data"
    return Task.model_validate(
        {
            "id": task_id,
            "name": name,
            "description": f"{tool} for sample {sample} ({tags['workflow_run']})",
            "inputs": [
                {
                    "name": f"reads_{r}",
                    "url": f"{bucket}/fastq/{sample}_R{r}.fastq.gz",
                    "path": f"/data/in/{sample}_R{r}.fastq.gz",
                    "type": "FILE",
                }
                for r in (1, 2)
            ]
            + [{"url": f"{bucket}/ref/GRCh38/", "path": "/data/ref", "type": "DIRECTORY"}],
            "outputs": [
                {
                    "url": f"{bucket}/results/{sample}/{tool}/",
                    "path": "/data/out",
                    "type": "DIRECTORY",
                }
            ],
            "resources": {"cpu_cores": 4, "ram_gb": 15.0, "disk_gb": 100.0, "preemptible": True},
            "executors": [
                {
                    "image": f"quay.io/biocontainers/{tool}:1.2.3--h5bf99c6_0",
                    "command": [
                        "/bin/bash",
                        "-c",
                        f"{tool} --threads 4 /data/ref/genome.fa /data/in/*.fastq.gz "
                        f"> /data/out/{sample}.out 2> /data/out/{sample}.log",
                    ],
                    "workdir": "/data/out",
                    "env": {"SAMPLE": sample, "LC_ALL": "C"},
                }
            ],
            "tags": tags,
            "creation_time": timestamp(),
        }
    )


def _log(state: State, sample: str) -> TaskLog:
    return TaskLog.model_validate(
        {
            "start_time": "2026-11-26T08:00:00.000000Z",
            "end_time": "2026-11-26T08:41:13.000000Z",
            "logs": [
                {
                    "start_time": "2026-11-26T08:01:02.000000Z",
                    "end_time": "2026-11-26T08:40:59.000000Z",
                    "exit_code": 0 if state is State.COMPLETE else 1,
                    "stdout": "processed 48213399 reads\n" * 3,
                    "stderr": "[M::mem_process_seqs] Processed 399998 reads in 78.5 CPU sec\n" * 4,
                }
            ],
            "outputs": [
                {
                    "url": f"s3://results/{sample}/{name}",
                    "path": f"/data/out/{name}",
                    "size_bytes": "1048576",
                }
                for name in (f"{sample}.out", f"{sample}.log")
            ],
            "system_logs": ["inputs staged (3)", "executor 0 started", "outputs uploaded (2)"],
        }
    )


def fill(url: sa.URL, records: list[TaskRecord]) -> None:
    """Bulk insert with the store's own row mapping (create() would take one commit per task)."""
    SqlStore(url).close()  # creates the schema
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        for start in range(0, len(records), 5000):
            chunk = records[start : start + 5000]
            with engine.begin() as conn:
                conn.execute(tasks.insert(), [task_row(r) for r in chunk])
                conn.execute(task_tags.insert(), [t for r in chunk for t in tag_rows(r)])
        if url.get_backend_name() == "postgresql":
            # What autovacuum does within a minute of such a load; without statistics PostgreSQL
            # reads the tags of a page by a sequential scan. (SQLite's plans need none.)
            with engine.begin() as conn:
                conn.execute(sa.text("ANALYZE tasks, task_tags"))
    finally:
        engine.dispose()


@dataclass(frozen=True)
class Case:
    label: str
    query: Callable[[list[TaskRecord]], TaskQuery]


def _deep_cursor(records: list[TaskRecord]) -> Cursor:
    """The position halfway down the listing (the full store: page ~195 of 390)."""
    newest_first = sorted(records, key=lambda r: (r.created_us, r.id), reverse=True)
    middle = newest_first[len(newest_first) // 2] if newest_first else None
    return Cursor(middle.created_us, middle.id) if middle else Cursor(2**62, "")


CASES = [
    Case("MINIMAL first page", lambda _: TaskQuery(PAGE, with_documents=False)),
    Case("BASIC first page", lambda _: TaskQuery(PAGE)),
    Case("MINIMAL deep page", lambda r: TaskQuery(PAGE, _deep_cursor(r), with_documents=False)),
    Case("BASIC deep page", lambda r: TaskQuery(PAGE, _deep_cursor(r))),
    Case(
        "MINIMAL state=EXECUTOR_ERROR",
        lambda _: TaskQuery(PAGE, state=State.EXECUTOR_ERROR, with_documents=False),
    ),
    Case("BASIC state=EXECUTOR_ERROR", lambda _: TaskQuery(PAGE, state=State.EXECUTOR_ERROR)),
    Case("BASIC state=RUNNING (20 tasks)", lambda _: TaskQuery(PAGE, state=State.RUNNING)),
    Case("BASIC tag project=covid-seq", lambda _: TaskQuery(PAGE, tags=[("project", "covid-seq")])),
    Case(
        "BASIC tag project=covid-seq, deep",
        lambda r: TaskQuery(PAGE, _deep_cursor(r), tags=[("project", "covid-seq")]),
    ),
    Case(
        "BASIC tag workflow_run (50 tasks)",
        lambda _: TaskQuery(PAGE, tags=[("workflow_run", "run-000010")]),
    ),
    Case("BASIC tag key sample", lambda _: TaskQuery(PAGE, tags=[("sample", None)])),
    Case("BASIC name_prefix=bwa-mem-", lambda _: TaskQuery(PAGE, name_prefix="bwa-mem-")),
    Case(
        "BASIC name_prefix=bwa-mem-S0010 (rare)",
        lambda _: TaskQuery(PAGE, name_prefix="bwa-mem-S0010"),
    ),
    Case(
        "BASIC state+tag+prefix",
        lambda _: TaskQuery(
            PAGE,
            state=State.COMPLETE,
            tags=[("project", "1000genomes")],
            name_prefix="gatk-",
        ),
    ),
]


@dataclass(frozen=True)
class Result:
    p50: float
    p95: float
    rows: int


CALL = "documents"


def _listed(store: SqlStore, query: TaskQuery) -> int:
    if CALL == "records":
        return len(store.list_tasks(query).records)
    return len(store.list_documents(query).tasks)


def time_queries(stores: list[SqlStore], queries: list[TaskQuery], repeat: int) -> list[Result]:
    """p50/p95 (ms) of each store answering its query; the stores take turns, run after run, so
    that a change in machine load weighs on all of them alike."""
    rows = []
    for store, query in zip(stores, queries, strict=True):
        for _ in range(3):
            count = _listed(store, query)
        rows.append(count)
    samples: list[list[float]] = [[] for _ in stores]
    for _ in range(repeat):
        for store, query, times in zip(stores, queries, samples, strict=True):
            began = time.perf_counter()
            _listed(store, query)
            times.append((time.perf_counter() - began) * 1000)
    results = []
    for times, count in zip(samples, rows, strict=True):
        times.sort()
        p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
        results.append(Result(statistics.median(times), p95, count))
    return results


def measure(url_for: UrlFor, size: int, repeat: int) -> dict[str, list[Result]]:
    """Results per case for the empty, small and full stores (in that order)."""
    with ExitStack() as stack:
        stores, datasets = [], []
        for label, count in (("empty", 0), ("small", SMALL), ("full", size)):
            records = generate(count)
            url = stack.enter_context(url_for(label))
            began = time.perf_counter()
            fill(url, records)
            print(f"  {label}: {count} tasks stored in {time.perf_counter() - began:.1f} s")
            store = SqlStore(url)
            stack.callback(store.close)
            stores.append(store)
            datasets.append(records)
        return {
            case.label: time_queries(stores, [case.query(r) for r in datasets], repeat)
            for case in CASES
        }


@contextmanager
def sqlite_url(label: str) -> Iterator[sa.URL]:
    with tempfile.TemporaryDirectory(prefix=f"tesk-bench-{label}-") as directory:
        yield sa.URL.create("sqlite", database=str(Path(directory) / "tesk.db"))


def postgres_url_for(base: str) -> UrlFor:
    @contextmanager
    def url_for(label: str) -> Iterator[sa.URL]:
        admin = sa.create_engine(parse_url(base), poolclass=NullPool)
        schema = f"tesk_bench_{label}_{uuid.uuid4().hex[:8]}"
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        try:
            yield sa.make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        finally:
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()

    return url_for


def report(database: str, size: int, results: dict[str, list[Result]]) -> str:
    lines = [
        f"### {database}, {size:,} tasks, pages of {PAGE}",
        "",
        "| query | rows (10k / full) | p50 ms | p95 ms | empty p50 | x empty | 10k p50 | x 10k |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, (empty, small, full) in results.items():
        lines.append(
            f"| {label} | {small.rows} / {full.rows} | {full.p50:.2f} | {full.p95:.2f} | "
            f"{empty.p50:.2f} | {full.p50 / empty.p50:.1f} | {small.p50:.2f} | "
            f"{full.p50 / small.p50:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--call", choices=("documents", "records"), default="documents")
    args = parser.parse_args(argv)
    global CALL
    CALL = args.call

    databases: list[tuple[str, UrlFor]] = [("SQLite", sqlite_url)]
    postgres = os.environ.get(POSTGRES_ENV)
    if postgres:
        databases.append(("PostgreSQL", postgres_url_for(postgres)))
    else:
        print(f"{POSTGRES_ENV} is not set: PostgreSQL is not measured")

    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    tables = []
    for name, url_for in databases:
        print(f"{name}:")
        results = measure(url_for, args.tasks, args.repeat)
        tables.append(report(name, args.tasks, results))
        print(tables[-1], end="\n\n")
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
