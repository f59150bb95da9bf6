"""Store fixtures: every contract test runs against the in-memory store, SQLite and PostgreSQL.

PostgreSQL runs when TESK_TEST_POSTGRES_URL is set (scripts/test-setup.sh sets it); each test gets
a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from tesk.store.base import TaskRecord, TaskStore
from tesk.store.database import parse_url
from tesk.store.sql import SqlStore
from tesk.tes.models import Task, TaskLog, timestamp
from tesk.tes.states import State
from tests.fakes.memory_store import MemoryStore

POSTGRES_ENV = "TESK_TEST_POSTGRES_URL"

STORES = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
SQL_STORES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]

OpenStore = Callable[[], TaskStore]


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[tuple[str, sa.Engine]]:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"{POSTGRES_ENV} is not set (scripts/test-setup.sh sets it)")
    engine = sa.create_engine(parse_url(url), poolclass=NullPool)
    yield url, engine
    engine.dispose()


def _database(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> tuple[sa.URL, Callable[[], None]]:
    """A fresh, empty database of `kind` and the function that removes it."""
    if kind == "sqlite":
        return sa.URL.create("sqlite", database=str(tmp_path / "tesk.db")), lambda: None
    url, admin = request.getfixturevalue("postgres_admin")
    schema = f"tesk_test_{uuid.uuid4().hex[:16]}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))

    return sa.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"}), drop


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.URL]:
    """The URL of a fresh PostgreSQL schema (skipped without a server)."""
    url, drop = _database("postgres", request, tmp_path)
    yield url
    drop()


@pytest.fixture(params=SQL_STORES)
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.URL]:
    """The URL of a fresh SQL database (SQLite file, PostgreSQL schema)."""
    url, drop = _database(request.param, request, tmp_path)
    yield url
    drop()


@pytest.fixture(params=STORES)
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenStore]:
    """Opens a store on one fresh database; every call is another client of the same data."""
    opened: list[TaskStore] = []
    if request.param == "memory":
        memory = MemoryStore()
        drop: Callable[[], None] = lambda: None  # noqa: E731

        def factory() -> TaskStore:
            return memory

    else:
        url, drop = _database(request.param, request, tmp_path)

        def factory() -> TaskStore:
            store = SqlStore(url, pool_size=2)
            opened.append(store)
            return store

    yield factory
    for store in opened:
        store.close()
    drop()


@pytest.fixture
def store(open_store: OpenStore) -> TaskStore:
    return open_store()


@pytest.fixture
def sql_store(sql_url: sa.URL) -> Iterator[SqlStore]:
    store = SqlStore(sql_url, pool_size=2)
    yield store
    store.close()


def make_task(
    task_id: str,
    *,
    name: str | None = None,
    tags: dict[str, str] | None = None,
    inputs: int = 0,
    created: str | None = None,
) -> Task:
    document: dict[str, object] = {
        "id": task_id,
        "executors": [
            {
                "image": "ubuntu:24.04",
                "command": ["/bin/sh", "-c", "md5sum /data/in/* > /data/out/md5.txt"],
                "env": {"LC_ALL": "C"},
            }
        ],
        "outputs": [{"url": f"s3://bucket/{task_id}/md5.txt", "path": "/data/out/md5.txt"}],
        "creation_time": created or timestamp(),
    }
    if name is not None:
        document["name"] = name
    if tags:
        document["tags"] = tags
    if inputs:
        document["inputs"] = [
            {"url": f"s3://bucket/in/{i}.fastq", "path": f"/data/in/{i}.fastq"}
            for i in range(inputs)
        ]
    return Task.model_validate(document)


def make_record(
    task_id: str,
    created_us: int,
    *,
    name: str | None = None,
    state: State = State.QUEUED,
    owner: str | None = None,
    tags: dict[str, str] | None = None,
    inputs: int = 0,
    worker: str | None = None,
    log: TaskLog | None = None,
    seq: int = 0,
) -> TaskRecord:
    return TaskRecord(
        id=task_id,
        state=state,
        created_us=created_us,
        task=make_task(task_id, name=name, tags=tags, inputs=inputs),
        name=name,
        owner=owner,
        log=log,
        seq=seq,
        worker=worker,
        tags=dict(tags or {}),
    )
