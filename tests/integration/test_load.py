"""10,000 tasks from 32 concurrent clients against a live `tesk serve`: every one stored, listed once.

The server is the real thing: `tesk serve` with 2 API workers, the SQL store (SQLite in its data
dir; PostgreSQL too when TESK_TEST_POSTGRES_URL is set) and the local backend with bwrap. The tasks
are trivial (`true`) and the local runner really starts executing them while the clients post:
that is what a workflow engine's burst does to TESK, and it makes the runner's store writes compete
with the API's. Figures are not asserted here (benchmarks/load.py reports them).
"""

from __future__ import annotations

import shutil
import uuid

import pytest

from benchmarks.load import create_tasks, list_all, served

TASKS = 10_000
CLIENTS = 32

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bwrap not installed")


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_ten_thousand_tasks_from_32_clients(store: str) -> None:
    if store == "postgres":
        import os

        if not os.environ.get("TESK_TEST_POSTGRES_URL"):
            pytest.skip("TESK_TEST_POSTGRES_URL is not set (scripts/test-setup.sh sets it)")
    run = uuid.uuid4().hex
    with served(store) as server:
        created = create_tasks(server.url, TASKS, CLIENTS, run)
        listed, _ = list_all(server.url, run)
        assert server.process is not None and server.process.poll() is None

    assert created.errors == []
    assert dict(created.statuses) == {200: TASKS}
    assert len(created.ids) == len(set(created.ids)) == TASKS
    assert len(listed) == TASKS
    assert set(listed) == set(created.ids)
