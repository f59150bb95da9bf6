"""Ownership: callers see and cancel only their own tasks; admins see all; others' ids are 404."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from connexion import App

from tesk.auth.identity import AuthenticationFailed, Identity, identity
from tesk.auth.oidc import groups_of
from tesk.auth.users import User, hash_password, write_users
from tesk.config import AuthConfig, CustomConfig, OidcConfig
from tesk.tes.models import TaskLog
from tesk.tes.progress import Progress
from tesk.tes.states import State
from tests.unit.api.support import BASES, Api, attach, task_body
from tests.unit.auth.support import Issuer, running_issuer
from tests.unit.auth.test_auth import auth_app, basic, bearer

BASE = BASES[0]
ALICE = basic("alice", "a")
BOB = basic("bob", "b")
ROOT = basic("root", "r")


@pytest.fixture(scope="module")
def users(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("owners") / "users"
    write_users(
        path,
        [
            User("alice", hash_password("a")),
            User("bob", hash_password("b"), frozenset({"staff"})),
            User("root", hash_password("r"), frozenset({"staff", "tesk-admin"})),
        ],
    )
    return path


def auth(users: Path, *, metadata: bool = False) -> AuthConfig:
    return AuthConfig(
        mode="basic", users_file=users, admin_group="tesk-admin", identity_in_metadata=metadata
    )


@pytest.fixture(scope="module")
def app(users: Path) -> App:
    return auth_app(auth(users))


@pytest.fixture
def api(app: App) -> Api:
    return attach(app)


def create(api: Api, headers: dict[str, str], name: str = "t") -> str:
    response = api.client.post(f"{BASE}/tasks", json=task_body(name=name), headers=headers)
    assert response.status_code == 200, response.get_json()
    task_id: str = response.get_json()["id"]
    return task_id


def listed(api: Api, headers: dict[str, str], query: str = "") -> set[str]:
    response = api.client.get(f"{BASE}/tasks?view=BASIC{query}", headers=headers)
    assert response.status_code == 200
    return {task["id"] for task in response.get_json()["tasks"]}


@pytest.mark.parametrize("base", BASES)
def test_callers_list_only_their_own_tasks(api: Api, base: str) -> None:
    mine = {create(api, ALICE, "a1"), create(api, ALICE, "a2")}
    theirs = {create(api, BOB, "b1")}
    assert listed(api, ALICE) == mine
    assert listed(api, BOB) == theirs
    assert listed(api, ROOT) == mine | theirs
    # Filters and paging stay within the caller's tasks.
    assert listed(api, ALICE, "&name_prefix=b") == set()
    first = api.client.get(f"{base}/tasks?page_size=1", headers=ALICE).get_json()
    second = api.client.get(
        f"{base}/tasks?page_size=1&page_token={first['next_page_token']}", headers=ALICE
    ).get_json()
    assert {t["id"] for t in first["tasks"] + second["tasks"]} == mine
    assert "next_page_token" not in second


@pytest.mark.parametrize("view", ["MINIMAL", "BASIC", "FULL"])
def test_another_callers_task_is_not_found(api: Api, view: str) -> None:
    task_id = create(api, ALICE)
    others = api.client.get(f"{BASE}/tasks/{task_id}?view={view}", headers=BOB)
    unknown = api.client.get(f"{BASE}/tasks/no-such-id?view={view}", headers=BOB)
    assert others.status_code == unknown.status_code == 404
    assert others.get_json()["title"] == unknown.get_json()["title"]
    assert api.client.get(f"{BASE}/tasks/{task_id}?view={view}", headers=ALICE).status_code == 200
    assert api.client.get(f"{BASE}/tasks/{task_id}?view={view}", headers=ROOT).status_code == 200


def test_another_callers_task_cannot_be_cancelled(api: Api) -> None:
    task_id = create(api, ALICE)
    response = api.client.post(f"{BASE}/tasks/{task_id}:cancel", headers=BOB)
    assert response.status_code == 404
    record = api.store.get(task_id)
    assert record is not None
    assert record.state is State.QUEUED
    assert api.backend.cancelled == []
    assert api.client.post(f"{BASE}/tasks/{task_id}:cancel", headers=ALICE).status_code == 200
    record = api.store.get(task_id)
    assert record is not None
    assert record.state is State.CANCELING


def test_admins_cancel_any_task(api: Api) -> None:
    task_id = create(api, BOB)
    assert api.client.post(f"{BASE}/tasks/{task_id}:cancel", headers=ROOT).status_code == 200
    assert api.backend.cancelled == [(task_id, State.QUEUED)]


def test_tasks_without_an_owner_are_for_admins_only(api: Api) -> None:
    # Created while authentication was off.
    task_id = api.service.create(task_body(), None)
    assert api.client.get(f"{BASE}/tasks/{task_id}", headers=ALICE).status_code == 404
    assert listed(api, ALICE) == set()
    assert listed(api, ROOT) == {task_id}


def test_identity_is_in_metadata_only_when_allowed(users: Path) -> None:
    hidden = attach(auth_app(auth(users)))
    task_id = create(hidden, ALICE)
    full = hidden.client.get(f"{BASE}/tasks/{task_id}?view=FULL", headers=ALICE).get_json()
    assert "logs" not in full

    custom = CustomConfig(auth=auth(users, metadata=True))
    shown = attach(auth_app(custom.auth), custom=custom)
    task_id = create(shown, ALICE)
    for headers in (ALICE, ROOT):
        full = shown.client.get(f"{BASE}/tasks/{task_id}?view=BASIC", headers=headers).get_json()
        assert full["logs"][0]["metadata"] == {"owner": "alice"}
    minimal = shown.client.get(f"{BASE}/tasks/{task_id}", headers=ALICE).get_json()
    assert minimal == {"id": task_id, "state": "QUEUED"}
    # Metadata the engine reports is kept next to it.
    shown.store.update(
        task_id,
        Progress(state=State.INITIALIZING, seq=1, log=TaskLog(metadata={"host": "node-1"})),
    )
    full = shown.client.get(f"{BASE}/tasks/{task_id}?view=FULL", headers=ALICE).get_json()
    assert full["logs"][0]["metadata"] == {"host": "node-1", "owner": "alice"}
    stored = shown.store.get(task_id)
    assert stored is not None
    assert stored.log is not None
    assert stored.log.metadata == {"host": "node-1"}


# -- OIDC: admin from a claim ------------------------------------------------------------------


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    with running_issuer() as running:
        yield running


@pytest.mark.parametrize(
    ("groups_claim", "claims"),
    [
        ("groups", {"groups": ["staff", "tesk-admin"]}),
        ("groups", {"groups": "tesk-admin"}),
        ("realm_access.roles", {"realm_access": {"roles": ["tesk-admin"]}}),
    ],
)
def test_oidc_admins_come_from_the_groups_claim(
    issuer: Issuer, groups_claim: str, claims: dict[str, object]
) -> None:
    config = AuthConfig(
        mode="oidc",
        admin_group="tesk-admin",
        oidc=OidcConfig(issuer=issuer.url, audience=["tesk"], groups_claim=groups_claim),
    )
    api = attach(auth_app(config))
    alice = bearer(issuer.token("alice"))
    admin = bearer(issuer.token("ops", **claims))
    not_admin = bearer(issuer.token("bob", groups=["staff"], realm_access={"roles": ["user"]}))
    task_id = create(api, alice)
    assert listed(api, admin) == {task_id}
    assert listed(api, not_admin) == set()
    assert api.client.get(f"{BASE}/tasks/{task_id}", headers=not_admin).status_code == 404


def test_groups_claim_paths() -> None:
    claims = {"a": {"b": ["x", 1, "y"]}, "s": "one", "n": 5}
    assert groups_of(claims, "a.b") == {"x", "y"}
    assert groups_of(claims, "s") == {"one"}
    assert groups_of(claims, "n") == frozenset()
    assert groups_of(claims, "a.missing") == frozenset()
    assert groups_of(claims, "s.deeper") == frozenset()


def test_identity_is_admin_only_in_the_admin_group() -> None:
    assert identity("u", frozenset({"tesk-admin"}), "tesk-admin") == Identity(
        "u", frozenset({"tesk-admin"}), admin=True
    )
    assert not identity("u", frozenset({"tesk-admin"}), None).admin
    with pytest.raises(AuthenticationFailed, match="printable"):
        identity("bad\nname", frozenset(), None)
