"""Scrubbing secrets out of text before it reaches a log.

Log lines may quote URLs a client sent (inputs, outputs), request headers, or exceptions that
embed either. What looks like a credential is replaced by `***`: the user-info part of a URL,
the value of an Authorization header, and query parameters that carry signatures or tokens
(pre-signed S3 URLs, SAS tokens, OAuth access tokens).
"""

from __future__ import annotations

import re

MASK = "***"

# scheme://user:password@host -> scheme://***@host (also user-only forms). Passwords pasted
# unencoded may hold `/` (S3 secret keys do): after the `:`, anything up to `@` is taken.
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^\s/?#@:'\"<>]*(?::[^\s@'\"<>]*)?@")

# Authorization: Bearer abc / "authorization": "Basic abc" / Proxy-Authorization=...
_AUTH_HEADER = re.compile(
    r"(?i)(\b(?:proxy-)?authorization\b[\"']?\s*[:=]\s*[\"']?)"
    r"(?:(bearer|basic|token|digest|negotiate)\s+)?[^\s\"',;}]+"
)

# A bare "Bearer <token>" anywhere (e.g. an exception that quotes a header value).
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9\-._~+/]+=*")

_SECRET_PARAMS = (
    "access_token",
    "refresh_token",
    "id_token",
    "token",
    "api_key",
    "apikey",
    "key",
    "password",
    "passwd",
    "pwd",
    "secret",
    "client_secret",
    "sig",
    "signature",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "x-goog-signature",
    "x-goog-credential",
    "awsaccesskeyid",
)
_QUERY_SECRET = re.compile(
    r"(?i)([?&;](?:" + "|".join(re.escape(p) for p in _SECRET_PARAMS) + r")=)[^&#\s\"'<>]*"
)


# Every pattern above needs one of these; most log lines have none and are returned at once.
_MARKERS = ("@", "authorization", "bearer", "?", "&", ";")


def redact(text: str) -> str:
    """`text` with every credential-looking part replaced by `***`."""
    if not text:
        return text
    lowered = text.lower()
    if not any(marker in lowered for marker in _MARKERS):
        return text
    text = _URL_USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", text)
    text = _AUTH_HEADER.sub(_auth_value, text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)
    return _QUERY_SECRET.sub(lambda m: f"{m.group(1)}{MASK}", text)


def _auth_value(match: re.Match[str]) -> str:
    scheme = match.group(2)
    return f"{match.group(1)}{scheme} {MASK}" if scheme else f"{match.group(1)}{MASK}"
