"""What `helm install` tells the operator: how to reach the API and submit with credentials."""

from __future__ import annotations

from collections.abc import Callable

from tests.deployment.chart import CHART

BASIC = CHART / "ci" / "basic-auth-values.yaml"
OIDC = CHART / "ci" / "postgresql-ingress-oidc-values.yaml"


def curl_lines(notes: str) -> list[str]:
    return [line.strip() for line in notes.splitlines() if line.strip().startswith("curl ")]


def test_open_api_submits_without_credentials(notes: Callable[..., str]) -> None:
    text = notes()
    assert 'auth.mode is "none"' in text
    assert "WARNING" not in text  # reachable through port-forward only
    for line in curl_lines(text):
        assert "-u " not in line
        assert "Authorization" not in line


def test_an_exposed_open_api_is_warned_about(notes: Callable[..., str]) -> None:
    assert "WARNING: this API is exposed (Ingress) without authentication" in notes(
        **{"ingress.enabled": True}
    )
    assert "exposed (Service type LoadBalancer)" in notes(**{"service.type": "LoadBalancer"})


def test_basic_auth_shows_how_to_add_a_user_and_submit_with_it(notes: Callable[..., str]) -> None:
    text = notes([BASIC])
    assert "tesk user add alice --file users    # --group tesk-admin" in text
    assert "create secret generic tesk-users --from-file=users=users" in text
    submits = [line for line in curl_lines(text) if "/tasks" in line]
    assert len(submits) == 2
    for line in submits:
        assert line.startswith('curl -fsS -u "$TES_USER:$TES_PASSWORD" ')
    assert 'user=os.environ["TES_USER"], password=os.environ["TES_PASSWORD"]' in text
    assert "without TLS" in text


def test_oidc_shows_how_to_submit_with_a_bearer_token(notes: Callable[..., str]) -> None:
    text = notes([OIDC])
    assert "https://login.example.org/realms/science, audience tesk" in text
    submits = [line for line in curl_lines(text) if "/tasks" in line]
    assert len(submits) == 2
    for line in submits:
        assert line.startswith('curl -fsS -H "Authorization: Bearer $TES_TOKEN" ')
    assert 'token=os.environ["TES_TOKEN"]' in text
    assert "export TES_URL=https://tes.example.org" in text
    assert "without TLS" not in text
