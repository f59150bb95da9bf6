"""The configured way of telling callers apart: none, HTTP Basic users, or OIDC bearer tokens."""

from __future__ import annotations

from typing import Literal

from foca.security.auth import validate_token

from tesk.auth.identity import AuthenticationFailed, Identity
from tesk.auth.oidc import identity_from_claims
from tesk.auth.users import UsersFile
from tesk.config import AuthConfig


class Authenticator:
    """Checks credentials for the mode of `config`. Raises AuthenticationFailed.

    `bearer` runs inside a request of the FOCA app, whose `security.auth` settings come from
    tesk.auth.oidc.foca_auth_config; FOCA itself answers invalid tokens with a 401 and a Bearer
    challenge.
    """

    def __init__(self, config: AuthConfig) -> None:
        self.config = config
        self._users: UsersFile | None = None
        if config.mode == "basic":
            if config.users_file is None:
                raise ValueError("auth.users_file is not set")
            self._users = UsersFile(config.users_file, config.admin_group)

    @property
    def mode(self) -> Literal["none", "basic", "oidc"]:
        return self.config.mode

    def basic(self, name: str, password: str) -> Identity:
        if self._users is None:
            raise AuthenticationFailed("this service does not accept Basic credentials")
        return self._users.verify(name, password)

    def bearer(self, token: str) -> Identity:
        if self.mode != "oidc":
            raise AuthenticationFailed("this service does not accept bearer tokens")
        claims = validate_token(token)["claims"]
        return identity_from_claims(claims, self.config.oidc, self.config.admin_group)
