"""Quotas from the users file, through a real `tesk serve` with Basic authentication.

A line of the users file may carry the user's own `max_active_tasks` and `max_queued_tasks`;
they override the configured per-group and per-owner values, and `tesk user quota` changes them
while the server runs. One task slot (local.max_concurrent_tasks: 1), held by a long task, keeps
the tasks the test creates QUEUED, so what counts as active never changes under it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tesk.auth.identity import OwnQuotas
from tesk.auth.users import User, hash_password, write_users
from tests.integration.live_server import LiveServer, live_server

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bwrap not installed")

TESK = str(Path(sys.executable).with_name("tesk"))
USERS = {name: f"{name}-pw" for name in ("alice", "bob", "carol", "dora", "holder")}


@pytest.fixture(scope="module")
def users_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("quota-users") / "users"
    hashed = {name: hash_password(password) for name, password in USERS.items()}
    write_users(
        path,
        [
            # alice's own line says 3 although her group allows 1.
            User("alice", hashed["alice"], frozenset({"lab"}), OwnQuotas(max_active_tasks=3)),
            User("bob", hashed["bob"], frozenset({"lab"})),
            # carol may have many tasks, but only one of them waiting.
            User("carol", hashed["carol"], quotas=OwnQuotas(max_queued_tasks=1)),
            User("dora", hashed["dora"], frozenset({"lab"}), OwnQuotas(max_active_tasks=2)),
            User("holder", hashed["holder"]),
        ],
    )
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, users_file: Path) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("tesk-user-quotas")
    overlay = root / "quotas.yaml"
    overlay.write_text(
        "custom:\n"
        "  auth:\n    mode: basic\n"
        f"    users_file: {users_file}\n"
        "  local:\n    max_concurrent_tasks: 1\n"
        "  quotas:\n    max_active_tasks_per_owner: 10\n    groups:\n      lab: 1\n"
    )
    with live_server(root, "--config", str(overlay)) as running:
        yield running


def create(server: LiveServer, user: str, command: str = "true") -> requests.Response:
    body = {"executors": [{"image": "alpine", "command": ["sh", "-c", command]}]}
    return requests.post(f"{server.api}/tasks", json=body, auth=(user, USERS[user]), timeout=30)


def accepted(server: LiveServer, user: str) -> int:
    """How many tasks `user` may create before a 429 (each stays QUEUED behind the holder)."""
    count = 0
    while (response := create(server, user)).status_code == 200:
        count += 1
        assert count <= 10, "no quota stopped the creates"
    assert response.status_code == 429, response.text
    assert response.headers["Retry-After"]
    return count


@pytest.fixture(scope="module")
def slot_held(server: LiveServer) -> Iterator[None]:
    response = create(server, "holder", "sleep 600")
    assert response.status_code == 200, response.text
    task_id = response.json()["id"]
    url = f"{server.api}/tasks/{task_id}"
    end = time.monotonic() + 30
    auth = ("holder", USERS["holder"])
    while requests.get(url, auth=auth, timeout=10).json()["state"] != "RUNNING":
        assert time.monotonic() < end, "the holder's task did not start"
        time.sleep(0.1)
    yield
    requests.post(f"{url}:cancel", auth=auth, timeout=10)


@pytest.mark.usefixtures("slot_held")
def test_a_users_own_quota_overrides_the_group_value(server: LiveServer) -> None:
    assert accepted(server, "bob") == 1  # groups.lab
    assert accepted(server, "alice") == 3  # her line's max_active_tasks
    response = create(server, "alice")
    assert response.status_code == 429
    assert "quota max_active_tasks of user alice (users file)" in response.json()["detail"]
    assert "3 active tasks" in response.json()["detail"]


@pytest.mark.usefixtures("slot_held")
def test_a_users_own_queue_limit_counts_only_their_queued_tasks(server: LiveServer) -> None:
    assert accepted(server, "carol") == 1
    detail = create(server, "carol").json()["detail"]
    assert "quota max_queued_tasks of user carol (users file)" in detail
    assert "1 tasks QUEUED" in detail


@pytest.mark.usefixtures("slot_held")
def test_tesk_user_quota_changes_a_running_servers_limits(
    server: LiveServer, users_file: Path
) -> None:
    assert accepted(server, "dora") == 2
    quota = [TESK, "user", "quota", "dora", "--file", str(users_file), "--max-active-tasks"]
    subprocess.run([*quota, "4"], check=True, capture_output=True)
    assert accepted(server, "dora") == 2  # the file is re-read: no restart
    subprocess.run([*quota, "none"], check=True, capture_output=True)
    # Back to her group's value, one active task; she has four.
    response = create(server, "dora")
    assert response.status_code == 429
    assert "quota groups.lab" in response.json()["detail"]
