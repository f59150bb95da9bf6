"""URL helpers shared by every transfer: redaction for messages and joining for directory trees."""

from __future__ import annotations

import posixpath
import re
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

# Query parameters that carry secrets in pre-signed URLs (S3, GCS, Azure SAS, generic tokens).
_SECRET_PARAM = re.compile(
    r"sig|signature|token|key|credential|secret|password|auth", re.IGNORECASE
)
REDACTED = "REDACTED"


def scheme_of(url: str) -> str:
    scheme, sep, _ = url.partition("://")
    return scheme.lower() if sep else ""


def redact(url: str) -> str:
    """`url` without user name, password or secret query values: safe for logs and messages."""
    if scheme_of(url) == "s3":
        return url  # s3:// URLs name bucket and key only; credentials never travel in them
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    netloc = parts.hostname or ""
    if ":" in netloc:  # an IPv6 literal
        netloc = f"[{netloc}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is not None:
        netloc = f"{netloc}:{port}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, REDACTED if _SECRET_PARAM.search(k) else v) for k, v in pairs], safe="/:"
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def join_url(base: str, relative: str) -> str:
    """`base` extended by a relative POSIX path, with exactly one slash between them.

    The relative part is percent-encoded, so a file named `a b#c` makes a valid URL; s3:// keys
    are literal (as for the AWS CLI), so they are joined as they are.
    """
    relative = relative.strip("/")
    if not relative:
        return base
    if scheme_of(base) == "s3":
        return base.rstrip("/") + "/" + relative
    parts = urlsplit(base)
    path = parts.path.rstrip("/") + "/" + quote(relative)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


def safe_relative(name: str) -> str:
    """A storage-provided relative name as a normalised POSIX path that stays inside its parent.

    Raises ValueError for names that would climb out (`../x`, `/etc/x`): a remote listing must not
    decide where files land outside the destination directory.
    """
    if name.startswith("/") or "\\" in name or "\x00" in name:
        raise ValueError(f"refusing the remote name {name!r}")
    normal = posixpath.normpath(name)
    if normal in (".", "") or normal == ".." or normal.startswith("../"):
        raise ValueError(f"refusing the remote name {name!r}")
    return normal
