"""Authentication modes through the HTTP API: none, HTTP Basic (users file), OIDC bearer tokens.

The OIDC tests run a real issuer on 127.0.0.1 (discovery + JWKS of keys generated here).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from connexion import App
from flask.testing import FlaskClient
from foca.security import auth as foca_auth
from pydantic import ValidationError

from tesk.api.security import exposure_warning
from tesk.app import create_app
from tesk.auth.users import User, hash_password, write_users
from tesk.config import AuthConfig, CustomConfig, OidcConfig
from tesk.settings import ConfigError
from tesk.tes.states import State
from tests.fakes.fake_backend import FakeBackend
from tests.fakes.memory_store import MemoryStore
from tests.unit.api.support import BASES, STARTED, Api, UrlChecks, attach, task_body
from tests.unit.auth.support import Issuer, SigningKey, running_issuer

BASE = BASES[0]


def auth_app(auth: AuthConfig) -> App:
    return create_app(
        CustomConfig(auth=auth),
        store=MemoryStore(),
        backend=FakeBackend(),
        check_url=UrlChecks(),
        storage=lambda: ["file:///srv/data"],
        started_at=STARTED,
    )


def basic(name: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{name}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_401(response: Any, challenge: str) -> dict[str, Any]:
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.headers["WWW-Authenticate"].lower().startswith(challenge.lower())
    body: dict[str, Any] = response.get_json()
    assert body["status"] == 401
    assert body["detail"]
    return body


# -- mode none -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def open_app() -> App:
    return auth_app(AuthConfig())


@pytest.mark.parametrize(
    "header", ["Basic " + base64.b64encode(b"None:None").decode(), "Bearer not-a-jwt", "junk"]
)
def test_mode_none_ignores_the_authorization_header(open_app: App, header: str) -> None:
    api = attach(open_app)
    headers = {"Authorization": header}
    created = api.client.post(f"{BASE}/tasks", json=task_body(), headers=headers)
    assert created.status_code == 200
    task_id = created.get_json()["id"]
    assert api.client.get(f"/v1/tasks/{task_id}", headers=headers).status_code == 200
    assert api.client.get(f"{BASE}/tasks", headers=headers).get_json()["tasks"] == [
        {"id": task_id, "state": "QUEUED"}
    ]
    record = api.store.get(task_id)
    assert record is not None
    assert record.owner is None


def test_spec_advertises_the_schemes_and_mode_none_requires_none(open_app: App) -> None:
    spec = open_app.app.test_client().get(f"{BASE}/openapi.json").get_json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["BasicAuth"]["type"] == "http"
    assert schemes["BasicAuth"]["scheme"] == "basic"
    assert (schemes["BearerAuth"]["scheme"], schemes["BearerAuth"]["bearerFormat"]) == (
        "bearer",
        "JWT",
    )
    assert "security" not in spec
    assert spec["paths"]["/service-info"]["get"]["security"] == []


# -- mode basic ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def users_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("auth") / "users"
    write_users(
        path,
        [
            User("alice", hash_password("alice-pw")),
            User("root", hash_password("root-pw"), frozenset({"tesk-admin"})),
        ],
    )
    return path


@pytest.fixture(scope="module")
def basic_app(users_file: Path) -> App:
    return auth_app(AuthConfig(mode="basic", users_file=users_file, admin_group="tesk-admin"))


@pytest.fixture
def basic_api(basic_app: App) -> Api:
    return attach(basic_app)


@pytest.mark.parametrize("base", BASES)
def test_basic_credentials_create_a_task_owned_by_the_user(basic_api: Api, base: str) -> None:
    response = basic_api.client.post(
        f"{base}/tasks", json=task_body(), headers=basic("alice", "alice-pw")
    )
    assert response.status_code == 200
    record = basic_api.store.get(response.get_json()["id"])
    assert record is not None
    assert record.owner == "alice"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic("alice", "wrong"),
        basic("nobody", "alice-pw"),
        basic("alice", ""),
        {"Authorization": "Basic !!!not-base64"},
        {"Authorization": "Basic"},
        {"Authorization": "Bearer abc.def.ghi"},
    ],
    ids=[
        "none",
        "wrong-password",
        "unknown-user",
        "empty-password",
        "garbage",
        "no-value",
        "bearer",
    ],
)
def test_basic_mode_refuses_missing_or_wrong_credentials(
    basic_api: Api, headers: dict[str, str]
) -> None:
    client = basic_api.client
    body = assert_401(client.post(f"{BASE}/tasks", json=task_body(), headers=headers), "Basic")
    assert "alice-pw" not in body["detail"]
    assert (
        'realm="TESK"' in client.get(f"{BASE}/tasks", headers=headers).headers["WWW-Authenticate"]
    )
    assert_401(client.get(f"{BASE}/tasks/some-id", headers=headers), "Basic")
    assert_401(client.post(f"{BASE}/tasks/some-id:cancel", headers=headers), "Basic")
    assert basic_api.store.find(set(State)) == []
    assert basic_api.backend.submitted == []


def test_unknown_user_and_wrong_password_get_the_same_answer(basic_api: Api) -> None:
    client = basic_api.client
    wrong = client.get(f"{BASE}/tasks", headers=basic("alice", "nope")).get_json()
    unknown = client.get(f"{BASE}/tasks", headers=basic("mallory", "nope")).get_json()
    assert wrong == unknown


def test_credentials_are_checked_before_the_body(basic_api: Api) -> None:
    response = basic_api.client.post(f"{BASE}/tasks", json={"not": "a task"})
    assert_401(response, "Basic")


@pytest.mark.parametrize("base", BASES)
def test_service_info_and_probes_stay_open(basic_api: Api, base: str) -> None:
    client = basic_api.client
    assert client.get(f"{base}/service-info").status_code == 200
    assert client.get(f"{base}/openapi.json").status_code == 200
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_legacy_service_info_is_a_task_route_and_needs_credentials(basic_api: Api) -> None:
    client = basic_api.client
    assert_401(client.get("/v1/tasks/service-info"), "Basic")
    answer = client.get("/v1/tasks/service-info", headers=basic("alice", "alice-pw"))
    assert answer.status_code == 200
    assert set(answer.get_json()) == {"name", "doc", "storage"}


def test_basic_spec_requires_basic_auth_except_service_info(basic_app: App) -> None:
    spec = basic_app.app.test_client().get(f"{BASE}/openapi.json").get_json()
    assert spec["security"] == [{"BasicAuth": []}]
    assert spec["paths"]["/service-info"]["get"]["security"] == []


def test_users_file_changes_apply_without_restart(tmp_path: Path) -> None:
    path = tmp_path / "users"
    write_users(path, [User("carol", hash_password("pw1"))])
    app = auth_app(AuthConfig(mode="basic", users_file=path))
    api = attach(app)
    client = api.client
    assert client.get(f"{BASE}/tasks", headers=basic("carol", "pw1")).status_code == 200
    write_users(path, [User("carol", hash_password("pw2")), User("dave", hash_password("pw3"))])
    assert_401(client.get(f"{BASE}/tasks", headers=basic("carol", "pw1")), "Basic")
    assert client.get(f"{BASE}/tasks", headers=basic("carol", "pw2")).status_code == 200
    assert client.get(f"{BASE}/tasks", headers=basic("dave", "pw3")).status_code == 200
    # A broken file lets nobody in (fail closed) until it is fixed.
    path.write_text("dave:not-a-hash\n")
    assert_401(client.get(f"{BASE}/tasks", headers=basic("dave", "pw3")), "Basic")
    path.unlink()
    assert_401(client.get(f"{BASE}/tasks", headers=basic("carol", "pw2")), "Basic")


def test_a_broken_users_file_stops_the_app_at_start(tmp_path: Path) -> None:
    path = tmp_path / "users"
    path.write_text("alice:$argon2id$x\nalice:$argon2id$y\n")
    with pytest.raises(ConfigError, match="line 2: user 'alice' appears twice"):
        auth_app(AuthConfig(mode="basic", users_file=path))
    with pytest.raises(ConfigError, match="cannot read the users file"):
        auth_app(AuthConfig(mode="basic", users_file=tmp_path / "missing"))


def test_modes_need_their_settings() -> None:
    with pytest.raises(ValidationError, match="needs users_file"):
        AuthConfig(mode="basic")
    with pytest.raises(ValidationError, match=r"needs oidc.issuer and oidc.audience"):
        AuthConfig(mode="oidc", oidc=OidcConfig(issuer="https://login.example.org"))


# -- mode oidc -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    with running_issuer() as running:
        yield running


def oidc_config(issuer: Issuer, **changes: Any) -> AuthConfig:
    oidc = OidcConfig(issuer=issuer.url, audience=["tesk"], **changes)
    return AuthConfig(mode="oidc", oidc=oidc, admin_group="tesk-admin")


@pytest.fixture(scope="module")
def oidc_app(issuer: Issuer) -> App:
    return auth_app(oidc_config(issuer))


@pytest.fixture
def oidc_api(oidc_app: App) -> Api:
    return attach(oidc_app)


def create_with(client: FlaskClient, headers: dict[str, str]) -> Any:
    return client.post(f"{BASE}/tasks", json=task_body(), headers=headers)


def test_a_valid_token_creates_a_task_owned_by_its_subject(oidc_api: Api, issuer: Issuer) -> None:
    response = create_with(oidc_api.client, bearer(issuer.token("alice")))
    assert response.status_code == 200, response.get_json()
    record = oidc_api.store.get(response.get_json()["id"])
    assert record is not None
    assert record.owner == "alice"


def test_discovery_and_jwks_are_cached(oidc_api: Api, issuer: Issuer) -> None:
    for subject in ("a", "b", "c"):
        assert create_with(oidc_api.client, bearer(issuer.token(subject))).status_code == 200
    assert issuer.requests["/.well-known/openid-configuration"] == 1
    assert issuer.requests["/jwks"] == 1


def test_oidc_spec_requires_bearer_auth(oidc_app: App) -> None:
    spec = oidc_app.app.test_client().get(f"{BASE}/openapi.json").get_json()
    assert spec["security"] == [{"BearerAuth": []}]


@pytest.mark.parametrize(
    "claims",
    [
        {"lifetime_s": -120},
        {"audience": "another-service"},
        {"iss": "http://127.0.0.1:9/not-the-issuer"},
        {"key": SigningKey.rsa()},
        {"key": "unsigned"},
    ],
    ids=["expired", "wrong-audience", "untrusted-issuer", "unknown-key", "alg-none"],
)
def test_invalid_tokens_are_refused(oidc_api: Api, issuer: Issuer, claims: dict[str, Any]) -> None:
    if claims.get("key") == "unsigned":
        import jwt

        token = jwt.encode(
            {"iss": issuer.url, "sub": "eve", "aud": "tesk", "iat": 1, "exp": 2**31},
            key=None,
            algorithm="none",
        )
    else:
        token = issuer.token("eve", **claims)
    response = create_with(oidc_api.client, bearer(token))
    assert_401(response, "Bearer")
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert oidc_api.store.find(set(State)) == []


@pytest.mark.parametrize(
    "headers",
    [{}, basic("alice", "pw"), {"Authorization": "Bearer"}],
    ids=["none", "basic", "empty-bearer"],
)
def test_missing_tokens_get_a_bearer_challenge(oidc_api: Api, headers: dict[str, str]) -> None:
    body = assert_401(create_with(oidc_api.client, headers), "Bearer")
    assert "Bearer" in body["detail"]


def test_rotated_keys_are_fetched_again(
    oidc_api: Api, issuer: Issuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert create_with(oidc_api.client, bearer(issuer.token("alice"))).status_code == 200
    monkeypatch.setattr(foca_auth, "JWKS_REFETCH_COOLDOWN", 0)
    fetched = issuer.requests["/jwks"]
    new_key = SigningKey.ec()
    issuer.keys.append(new_key)
    try:
        token = issuer.token("alice", key=new_key)
        assert create_with(oidc_api.client, bearer(token)).status_code == 200
        assert issuer.requests["/jwks"] == fetched + 1
    finally:
        issuer.keys.remove(new_key)


def test_access_token_type_can_be_required(issuer: Issuer) -> None:
    api = attach(auth_app(oidc_config(issuer, require_access_token_type=True)))
    assert create_with(api.client, bearer(issuer.token(typ="at+jwt"))).status_code == 200
    assert_401(create_with(api.client, bearer(issuer.token(typ="JWT"))), "Bearer")


def test_an_unreachable_issuer_refuses_without_blaming_the_token() -> None:
    with running_issuer() as gone:
        token = gone.token("alice")
        config = oidc_config(gone)
    api = attach(auth_app(config))
    response = create_with(api.client, bearer(token))
    assert_401(response, "Bearer")
    # The token may be fine: clients must not drop it (RFC 6750: no error code).
    assert "invalid_token" not in response.headers["WWW-Authenticate"]


@pytest.mark.parametrize(
    ("mode", "host", "warned"),
    [
        ("none", "127.0.0.1", False),
        ("none", "::1", False),
        ("none", "localhost", False),
        ("none", "0.0.0.0", True),
        ("none", "tesk.example.org", True),
        ("basic", "0.0.0.0", False),
        ("oidc", "::", False),
    ],
)
def test_serving_without_auth_beyond_loopback_is_warned_about(
    mode: str, host: str, warned: bool
) -> None:
    warning = exposure_warning(mode, host)
    assert (warning is not None) == warned
    if warning:
        assert host in warning
        assert "auth.mode" in warning
