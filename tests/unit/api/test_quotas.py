"""Quotas of CreateTask: 429 with Retry-After and the quota named, nothing stored."""

from __future__ import annotations

from pathlib import Path

import pytest
from connexion import App

from tesk.auth.users import User, hash_password, write_users
from tesk.config import AuthConfig, CustomConfig, QuotasConfig
from tesk.tes.progress import Progress
from tesk.tes.states import State
from tests.unit.api.support import BASES, Api, attach, new_app, task_body
from tests.unit.auth.test_auth import auth_app, basic

BASE = BASES[0]


def create(api: Api, **headers: str) -> tuple[int, dict[str, object], dict[str, str]]:
    response = api.client.post(f"{BASE}/tasks", json=task_body(), headers=headers)
    return response.status_code, response.get_json(), dict(response.headers)


def test_over_the_owners_quota_create_answers_429_and_stores_nothing() -> None:
    quotas = QuotasConfig(max_active_tasks_per_owner=2, retry_after_s=12)
    api = attach(new_app(), custom=CustomConfig(quotas=quotas))
    first, second = (create(api)[1]["id"] for _ in range(2))

    status, body, headers = create(api)
    assert status == 429
    assert headers["Retry-After"] == "12"
    assert body["title"] == "Too Many Requests"
    assert "quota max_active_tasks_per_owner" in str(body["detail"])
    assert "2 active tasks" in str(body["detail"])
    assert sorted(r.id for r in api.store.find(set(State))) == sorted([first, second])

    # A finished task no longer counts; a cancelling one still does.
    api.store.update(str(first), Progress(State.COMPLETE))
    api.store.update(str(second), Progress(State.CANCELING))
    assert create(api)[0] == 200
    assert create(api)[0] == 429


def test_the_queue_of_all_owners_is_bounded() -> None:
    api = attach(new_app(), custom=CustomConfig(quotas=QuotasConfig(max_queued_tasks=1)))
    queued = create(api)[1]["id"]
    status, body, _ = create(api)
    assert status == 429
    assert "quota max_queued_tasks" in str(body["detail"])
    api.store.update(str(queued), Progress(State.RUNNING))
    assert create(api)[0] == 200


@pytest.fixture(scope="module")
def users_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("quotas") / "users"
    write_users(
        path,
        [
            User("alice", hash_password("a"), frozenset({"lab"})),
            User("bob", hash_password("b"), frozenset({"lab", "big-lab"})),
            User("carol", hash_password("c")),
            User("dave", hash_password("d"), frozenset({"lab"})),
            User("root", hash_password("r"), frozenset({"tesk-admin"})),
        ],
    )
    return path


@pytest.fixture(scope="module")
def basic_app(users_file: Path) -> App:
    return auth_app(AuthConfig(mode="basic", users_file=users_file, admin_group="tesk-admin"))


def test_users_groups_and_admins_have_their_own_limits(basic_app: App) -> None:
    quotas = QuotasConfig(
        max_active_tasks_per_owner=1, groups={"lab": 2, "big-lab": 3}, users={"dave": 4}
    )
    api = attach(basic_app, custom=CustomConfig(quotas=quotas))

    def accepted(user: str, password: str) -> int:
        count = 0
        while create(api, **basic(user, password))[0] == 200:
            count += 1
            assert count < 10
        return count

    # carol: the default; alice: her group; bob: the largest of his groups; dave: his own entry.
    assert accepted("carol", "c") == 1
    assert accepted("alice", "a") == 2
    assert accepted("bob", "b") == 3
    assert accepted("dave", "d") == 4
    status, body, _ = create(api, **basic("bob", "b"))
    assert status == 429
    assert "quota groups.big-lab" in str(body["detail"])
    # Each owner counts only their own tasks; admins are exempt.
    assert sum(1 for _ in range(5) if create(api, **basic("root", "r"))[0] == 200) == 5


def test_without_quotas_nothing_is_counted() -> None:
    api = attach(new_app())
    assert all(create(api)[0] == 200 for _ in range(20))
