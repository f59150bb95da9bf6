"""HTTP Basic users: a file of `name:argon2-hash[:group,group...[:quota=N,quota=N...]]` lines.

The optional fourth field holds the user's own quota values (`max_active_tasks`,
`max_queued_tasks`; see tesk/quotas.py), e.g. `alice:$argon2id$...:lab:max_active_tasks=50`, or
`bob:$argon2id$...::max_queued_tasks=10` without groups. Lines of two or three fields read as
they always did.

Passwords are hashed with Argon2id (argon2-cffi, salted, RFC 9106 parameters). The file is re-read
when it changes, so users are added or removed without a restart. A verified name and password pair
is remembered for a while as an HMAC under a key that lives only in this process, because an Argon2
verification costs tens of milliseconds and a workflow engine sends its credentials with every
request.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from tesk.auth.identity import AuthenticationFailed, Identity, OwnQuotas, identity

logger = logging.getLogger(__name__)

_HASHER = PasswordHasher()
_NAME_FORBIDDEN = frozenset(":,#")

QUOTA_KEYS = ("max_active_tasks", "max_queued_tasks")  # the fields of OwnQuotas

CACHE_TTL_S = 300.0
CACHE_SIZE = 1024


class UsersFileError(Exception):
    """The users file cannot be read or has a malformed line; the message says where."""


@dataclass(frozen=True)
class User:
    name: str
    password_hash: str
    groups: frozenset[str] = frozenset()
    quotas: OwnQuotas = field(default_factory=OwnQuotas)

    def line(self) -> str:
        groups = ",".join(sorted(self.groups))
        quotas = format_quotas(self.quotas)
        if quotas:
            return f"{self.name}:{self.password_hash}:{groups}:{quotas}"
        return f"{self.name}:{self.password_hash}" + (f":{groups}" if groups else "")


def format_quotas(quotas: OwnQuotas) -> str:
    """`key=N,...` of the values set, in QUOTA_KEYS order; "" when none is."""
    values = ((key, getattr(quotas, key)) for key in QUOTA_KEYS)
    return ",".join(f"{key}={value}" for key, value in values if value is not None)


def parse_quotas(text: str) -> OwnQuotas:
    """The fourth field of a line. Raises ValueError naming what is wrong."""
    values: dict[str, int] = {}
    for item in filter(None, text.split(",")):
        key, equals, value = item.partition("=")
        if not equals or key not in QUOTA_KEYS:
            raise ValueError(
                f"quota {item!r}: expected key=N with a key of {', '.join(QUOTA_KEYS)}"
            )
        if key in values:
            raise ValueError(f"quota {key} is given twice")
        if not value.isascii() or not value.isdigit() or int(value) < 1:
            raise ValueError(f"quota {key}={value!r}: must be a whole number of at least 1")
        values[key] = int(value)
    return OwnQuotas(**values)


def hash_password(password: str) -> str:
    if not password:
        raise ValueError("the password must not be empty")
    return _HASHER.hash(password)


def check_name(name: str, what: str = "user name") -> str:
    if not name or not name.isprintable() or name != name.strip():
        raise ValueError(f"{what} {name!r}: must be printable, without surrounding spaces")
    if any(ch in _NAME_FORBIDDEN or ch.isspace() for ch in name):
        raise ValueError(f"{what} {name!r}: must not contain spaces, ':', ',' or '#'")
    return name


def parse_users(text: str, source: str) -> dict[str, User]:
    users: dict[str, User] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        where = f"{source}, line {number}"
        if len(parts) not in (2, 3, 4):
            raise UsersFileError(
                f"{where}: expected 'name:hash', 'name:hash:group,group' or "
                "'name:hash:group,group:quota=N,quota=N'"
            )
        name, password_hash = parts[0], parts[1]
        groups = parts[2].split(",") if len(parts) >= 3 and parts[2] else []
        try:
            check_name(name)
            for group in groups:
                check_name(group, "group")
            quotas = parse_quotas(parts[3]) if len(parts) == 4 else OwnQuotas()
        except ValueError as exc:
            raise UsersFileError(f"{where}: {exc}") from None
        if not password_hash.startswith("$argon2"):
            raise UsersFileError(f"{where}: the password hash is not an Argon2 hash")
        if name in users:
            raise UsersFileError(f"{where}: user {name!r} appears twice")
        users[name] = User(name, password_hash, frozenset(groups), quotas)
    return users


def read_users(path: Path) -> dict[str, User]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsersFileError(f"cannot read the users file {str(path)!r}: {exc}") from None
    return parse_users(text, str(path))


def write_users(path: Path, users: Iterable[User]) -> None:
    """Replace the file atomically (a running TESK never reads half a file), mode 0600."""
    lines = "".join(f"{user.line()}\n" for user in sorted(users, key=lambda u: u.name))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(
                "# TESK users: name:argon2-hash[:group,...[:quota=N,...]] "
                "(see `tesk user --help`)\n"
            )
            handle.write(lines)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class UsersFile:
    """Verifies Basic credentials against the users file, re-reading it when it changes."""

    def __init__(self, path: Path, admin_group: str | None) -> None:
        self._path = path
        self._admin_group = admin_group
        self._lock = threading.Lock()
        self._users = read_users(path)  # a broken file stops TESK at start-up
        self._stamp = self._current_stamp()
        self._cache_key = secrets.token_bytes(32)
        self._verified: dict[bytes, tuple[float, Identity]] = {}

    def verify(self, name: str, password: str) -> Identity:
        """The user's Identity. Raises AuthenticationFailed (the same for every wrong part)."""
        self._reload_if_changed()
        digest = hmac.new(
            self._cache_key, f"{name}\0{password}".encode(errors="surrogatepass"), hashlib.sha256
        ).digest()
        now = time.monotonic()
        with self._lock:
            cached = self._verified.get(digest)
            user = self._users.get(name)
        if cached is not None and cached[0] > now:
            return cached[1]
        # Unknown names are checked against a dummy hash: they must not answer faster.
        if not _verify(user.password_hash if user else _dummy_hash(), password) or user is None:
            raise AuthenticationFailed("wrong user name or password")
        found = identity(user.name, user.groups, self._admin_group, user.quotas)
        with self._lock:
            if len(self._verified) >= CACHE_SIZE:
                self._verified.clear()
            self._verified[digest] = (now + CACHE_TTL_S, found)
        return found

    def _reload_if_changed(self) -> None:
        stamp = self._current_stamp()
        if stamp == self._stamp:
            return
        try:
            users = read_users(self._path)
        except UsersFileError as exc:
            # Fail closed: a removed or broken file lets nobody in until it is fixed.
            logger.error("%s; refusing every Basic login until it is fixed", exc)
            users = {}
        with self._lock:
            self._users = users
            self._stamp = stamp
            self._verified.clear()

    def _current_stamp(self) -> tuple[int, int, int] | None:
        try:
            info = self._path.stat()
        except OSError:
            return None
        return (info.st_mtime_ns, info.st_size, info.st_ino)


@functools.cache
def _dummy_hash() -> str:
    """Verified against for unknown names, so that they take as long as a wrong password."""
    return _HASHER.hash(secrets.token_urlsafe(16))


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
