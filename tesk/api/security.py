"""Authentication in the HTTP layer: Connexion's security handlers and the caller of a request.

The spec patch declares the schemes `BasicAuth` and `BearerAuth` with the handlers below; the
security requirement of the configured mode is added when the app is built (with_auth), so that
with `auth.mode: none` Connexion never looks at an Authorization header (older workflow-engine
plugins send `Basic None:None`). GetServiceInfo opts out of every requirement.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from flask import Flask, current_app, g
from foca.models.config import Config
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Unauthorized
from werkzeug.http import quote_header_value

from tesk.auth.authenticator import Authenticator
from tesk.auth.identity import AuthenticationFailed, Identity
from tesk.auth.oidc import foca_auth_config
from tesk.config import AuthConfig

REALM = "TESK"
SCHEMES = {"basic": "BasicAuth", "oidc": "BearerAuth"}
"""The securitySchemes (tes-1.1.0.patch.yaml) each mode requires."""

_AUTHENTICATOR_KEY = "TESK_AUTHENTICATOR"
_CALLER = "tesk_caller"


def with_auth(conf: Config, auth: AuthConfig, is_tes_spec: Any) -> Config:
    """`conf` with the security requirement of `auth.mode` on the TES specs (copied, not changed).

    `is_tes_spec(path)` tells the TES specs apart from others the config may serve.
    """
    conf = conf.model_copy(deep=True)
    scheme = SCHEMES.get(auth.mode)
    if scheme is not None:
        requirement: dict[str, Any] = {"security": [{scheme: []}]}
        for spec in conf.api.specs:
            if is_tes_spec(spec.path):
                spec.patches = [*(spec.patches or []), requirement]
    if auth.mode == "oidc":
        conf.security.auth = foca_auth_config(auth.oidc)
    return conf


def attach_authenticator(app: Flask, authenticator: Authenticator) -> None:
    app.config[_AUTHENTICATOR_KEY] = authenticator


def authenticator() -> Authenticator:
    found = current_app.config.get(_AUTHENTICATOR_KEY)
    if not isinstance(found, Authenticator):
        raise RuntimeError("no Authenticator attached to this app (see tesk.app.create_app)")
    return found


# -- Connexion security handlers (x-basicInfoFunc, x-bearerInfoFunc) ---------------------------


def basic_info(username: str, password: str) -> dict[str, Any]:
    try:
        caller = authenticator().basic(username, password)
    except AuthenticationFailed as exc:
        raise unauthorized(f"Basic credentials refused: {exc}") from None
    return _remember(caller)


def bearer_info(token: str) -> dict[str, Any]:
    try:
        caller = authenticator().bearer(token)
    except AuthenticationFailed as exc:
        raise unauthorized(f"bearer token refused: {exc}") from None
    return _remember(caller)


def _remember(caller: Identity) -> dict[str, Any]:
    setattr(g, _CALLER, caller)
    return {"sub": caller.subject}


# -- for controllers and error handlers ---------------------------------------------------------


def current_caller() -> Identity | None:
    """The authenticated caller; None when authentication is off (everyone sees everything).

    Fails closed: with authentication on, an operation that did not authenticate its caller
    answers 401 instead of treating the caller as one who may see every task.
    """
    if authenticator().mode == "none":
        return None
    caller = g.get(_CALLER)
    if not isinstance(caller, Identity):
        raise unauthorized("this operation needs credentials")
    return caller


class _Challenge(WWWAuthenticate):
    """A challenge with quoted parameters, as RFC 7617 and RFC 6750 write them."""

    def to_header(self) -> str:
        scheme = self.type.capitalize()
        parameters = ", ".join(
            f"{key}={quote_header_value(value or '', allow_token=False)}"
            for key, value in self.parameters.items()
        )
        return f"{scheme} {parameters}" if parameters else scheme


def challenges() -> list[WWWAuthenticate]:
    """The WWW-Authenticate challenge of the configured mode (none when authentication is off)."""
    mode = authenticator().mode
    if mode == "basic":
        return [_Challenge("basic", {"realm": REALM, "charset": "UTF-8"})]
    if mode == "oidc":
        return [_Challenge("bearer", {"realm": REALM})]
    return []


def unauthorized(description: str) -> Unauthorized:
    return Unauthorized(description, www_authenticate=challenges())


def describe_missing(description: str | None) -> str:
    """A clearer `detail` for Connexion's own 401s (no or malformed Authorization header)."""
    scheme = {"basic": "Basic", "oidc": "Bearer"}.get(authenticator().mode, "")
    what = description or "no valid credentials"
    return f"{what}: send 'Authorization: {scheme} ...' (see the WWW-Authenticate header)"


def exposure_warning(mode: str, host: str) -> str | None:
    """A warning when the API runs without authentication on an address others can reach."""
    if mode != "none" or host == "localhost":
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass  # a host name: assume it is reachable
    return (
        f"auth.mode is 'none' and the API listens on {host}: whoever reaches it can run "
        "containers and read every task; set auth.mode to basic or oidc (docs/security.md)"
    )
