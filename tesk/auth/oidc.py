"""Bearer JWTs of one OpenID Connect issuer, validated by FOCA (foca.security.auth).

FOCA fetches the issuer's discovery document and JWKS (cached, refetched once for an unknown key
id, throttled while the issuer fails), rejects tokens of other issuers before any request, and
checks the signature, `iss`, `aud`, `exp`, `iat` and the identity claim. TESK maps its `auth.oidc`
settings onto FOCA's `security.auth` section and turns the verified claims into an Identity.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from foca.models.config import AuthConfig as FocaAuthConfig

from tesk.auth.identity import AuthenticationFailed, Identity, identity
from tesk.config import OidcConfig


def foca_auth_config(oidc: OidcConfig) -> FocaAuthConfig:
    """FOCA's `security.auth` settings for TESK's `auth.oidc` settings."""
    if not oidc.issuer:
        raise ValueError("auth.oidc.issuer is not set")
    return FocaAuthConfig(
        issuers=[oidc.issuer],
        audience=list(oidc.audience),
        verify_audience=True,
        verify_token_type=oidc.require_access_token_type,
        claim_identity=oidc.identity_claim,
        algorithms=list(oidc.algorithms),
        timeout=oidc.timeout_s,
        cache_ttl=oidc.cache_ttl_s,
        add_key_to_claims=False,
    )


def identity_from_claims(
    claims: Mapping[str, Any], oidc: OidcConfig, admin_group: str | None
) -> Identity:
    subject = claims.get(oidc.identity_claim)
    if not isinstance(subject, str):
        raise AuthenticationFailed(f"the token's {oidc.identity_claim!r} claim is not a string")
    return identity(subject, groups_of(claims, oidc.groups_claim), admin_group)


def groups_of(claims: Mapping[str, Any], path: str) -> frozenset[str]:
    """The strings at a dotted claim path (`realm_access.roles`): a list, or one string."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return frozenset()
        value = value[part]
    if isinstance(value, str):
        return frozenset([value])
    if isinstance(value, list):
        return frozenset(item for item in value if isinstance(item, str))
    return frozenset()
