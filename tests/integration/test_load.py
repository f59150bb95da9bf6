"""10,000 tasks from 32 concurrent clients against a live `tesk serve`: each stored, listed once.

The server is the real thing: `tesk serve` with 2 API workers, the SQL store (SQLite in its data
dir; PostgreSQL too when TESK_TEST_POSTGRES_URL is set) and the local backend with bwrap. The tasks
are trivial (`true`) and the local runner really executes them while the clients post, as after a
workflow engine's burst, so the runner's store writes compete with the API's. The runner runs one
task at a time here, so that the API keeps most of the two cores and the test stays short; the
tasks it has not reached when the test ends are simply left queued. Figures are not asserted here
(benchmarks/load.py reports them).
"""

from __future__ import annotations

import os
import shutil
import uuid

import pytest

from benchmarks.load import create_tasks, list_all, served
from benchmarks.served import can_serve

TASKS = 10_000
CLIENTS = 32

pytestmark = [
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bwrap not installed"),
    pytest.mark.skipif(not can_serve(), reason="tesk serve needs the filer"),
]


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_ten_thousand_tasks_from_32_clients(store: str) -> None:
    if store == "postgres" and not os.environ.get("TESK_TEST_POSTGRES_URL"):
        pytest.skip("TESK_TEST_POSTGRES_URL is not set (scripts/test-setup.sh sets it)")
    run = uuid.uuid4().hex
    with served(store, custom={"local": {"max_concurrent_tasks": 1}}) as server:
        created = create_tasks(server.url, TASKS, CLIENTS, run)
        listed, _ = list_all(server.url, run)
        assert server.process is not None
        assert server.process.poll() is None

    assert created.errors == []
    assert dict(created.statuses) == {200: TASKS}
    assert len(created.ids) == len(set(created.ids)) == TASKS
    assert len(listed) == TASKS
    assert set(listed) == set(created.ids)
