"""The authenticated caller of a request, as the service sees it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class OwnQuotas:
    """A user's own quota values (from their line of the users file); None: the configured one.

    `max_active_tasks` wins over every `quotas.*` limit of active tasks for this user;
    `max_queued_tasks` bounds how many of this user's tasks may be QUEUED (besides the
    service-wide `quotas.max_queued_tasks`).
    """

    max_active_tasks: int | None = None
    max_queued_tasks: int | None = None


@dataclass(frozen=True)
class Identity:
    """A caller: `subject` owns the tasks it creates; an admin sees every task."""

    subject: str
    groups: frozenset[str] = field(default_factory=frozenset)
    admin: bool = False
    quotas: OwnQuotas = OwnQuotas()


class AuthenticationFailed(Exception):
    """The credentials are missing, malformed or wrong; the message says which (no secrets)."""


MAX_SUBJECT_CHARS = 512
"""Owners are indexed by the store; no identity provider issues longer subjects."""


def identity(
    subject: str,
    groups: frozenset[str],
    admin_group: str | None,
    quotas: OwnQuotas | None = None,
) -> Identity:
    """An Identity, admin when `admin_group` is one of `groups`. Raises AuthenticationFailed."""
    if not subject or len(subject) > MAX_SUBJECT_CHARS or not subject.isprintable():
        raise AuthenticationFailed(
            f"the caller's identity must be 1 to {MAX_SUBJECT_CHARS} printable characters"
        )
    admin = admin_group is not None and admin_group in groups
    return Identity(subject=subject, groups=groups, admin=admin, quotas=quotas or OwnQuotas())
