"""The dashboard's routes in the Flask app: where it is served, what it needs, what it refuses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from connexion import App

from tesk.auth.users import User, hash_password, write_users
from tesk.config import AuthConfig
from tests.unit.api.support import new_app
from tests.unit.auth.test_auth import auth_app

STATIC = Path(__file__).parents[3] / "tesk" / "dashboard" / "static"
PAGES = ["/dashboard/", "/dashboard/tasks/some-id", "/dashboard/submit", "/dashboard/login"]


@pytest.fixture(scope="module")
def app() -> App:
    return new_app()


@pytest.fixture(scope="module")
def basic_app(tmp_path_factory: pytest.TempPathFactory) -> App:
    users = tmp_path_factory.mktemp("dashboard") / "users"
    write_users(users, [User("alice", hash_password("a"))])
    return auth_app(AuthConfig(mode="basic", users_file=users))


@pytest.mark.parametrize("path", ["/", "/dashboard"])
def test_the_root_leads_to_the_dashboard(app: App, path: str) -> None:
    response = app.app.test_client().get(path)
    assert response.status_code == 302
    assert response.headers["Location"] == "/dashboard/"


@pytest.mark.parametrize("path", PAGES)
def test_every_page_is_the_same_document_with_a_strict_policy(app: App, path: str) -> None:
    response = app.app.test_client().get(path)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert "__TESK_ROOT__" not in response.text
    assert 'src="/dashboard/static/main.js"' in response.text
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]


def test_pages_and_scripts_need_no_credentials_while_tasks_do(basic_app: App) -> None:
    client = basic_app.app.test_client()
    assert client.get("/dashboard/").status_code == 200
    assert client.get("/dashboard/static/api.js").status_code == 200
    assert client.get("/ga4gh/tes/v1/tasks").status_code == 401


def test_behind_a_proxy_links_keep_its_path(app: App) -> None:
    response = app.app.test_client().get("/dashboard/", base_url="http://localhost/tesk/")
    assert '<meta name="tesk-root" content="/tesk">' in response.text
    assert 'href="/tesk/dashboard/static/style.css"' in response.text


def test_the_api_and_probes_are_where_they_were(app: App) -> None:
    client = app.app.test_client()
    assert client.get("/ga4gh/tes/v1/service-info").status_code == 200
    assert client.get("/v1/service-info").status_code == 200
    assert client.get("/ga4gh/tes/v1/ui/").status_code == 200
    assert client.get("/healthz").status_code == 200
    assert client.get("/metrics").status_code == 200
    assert client.get("/dashboard/static/missing.js").status_code == 404


def test_nothing_is_loaded_from_elsewhere() -> None:
    # Runs offline: no URL with a host in the shipped files, only paths of this origin.
    for path in STATIC.iterdir():
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", path.read_text()), path.name
