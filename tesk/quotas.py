"""Quotas of CreateTask: how many tasks one owner may have active, and how many may wait.

Checked before a task is stored: over a quota, CreateTask answers 429 with Retry-After and a
message naming the quota, and stores nothing. An owner's limit of active tasks is, in order:
the `max_active_tasks` of their line in the users file (Basic users), their own entry in
`quotas.users`, the largest entry among their groups in `quotas.groups` (groups of the users
file or of the OIDC token), `quotas.max_active_tasks_per_owner`. A users-file line may also bound
how many of that user's tasks wait QUEUED (`max_queued_tasks`). Admins are exempt unless
configured otherwise. Without authentication every caller is one owner.

The check and the insert are not one transaction: creates that arrive at the same moment may
pass together, so an owner can exceed a quota by the number of creates in flight.
"""

from __future__ import annotations

from tesk.auth.identity import Identity
from tesk.config import QuotasConfig
from tesk.store.base import TaskStore
from tesk.tes.errors import QuotaExceeded
from tesk.tes.states import UNFINISHED, State


class Quotas:
    def __init__(self, config: QuotasConfig, store: TaskStore) -> None:
        self._config = config
        self._store = store

    def check(self, caller: Identity | None) -> None:
        """Raise QuotaExceeded if one more task of `caller` is over a quota."""
        config = self._config
        if caller is not None and caller.admin and config.admins_exempt:
            return
        if config.max_queued_tasks is not None:
            queued = self._store.count_by_state({State.QUEUED})[State.QUEUED]
            if queued >= config.max_queued_tasks:
                raise QuotaExceeded(
                    f"quota max_queued_tasks: {queued} tasks are QUEUED, the most this service "
                    f"holds ({config.max_queued_tasks}); try again later",
                    config.retry_after_s,
                )
        own_queued = caller.quotas.max_queued_tasks if caller is not None else None
        if caller is not None and own_queued is not None:
            queued = self._store.count_owned(caller.subject, {State.QUEUED})
            if queued >= own_queued:
                raise QuotaExceeded(
                    f"quota max_queued_tasks of user {caller.subject} (users file): you have "
                    f"{queued} tasks QUEUED, the most allowed ({own_queued}); try again when "
                    "some have started",
                    config.retry_after_s,
                )
        limit, source = self.owner_limit(caller)
        if limit is None:
            return
        owner = caller.subject if caller is not None else None
        active = self._store.count_owned(owner, UNFINISHED)
        if active >= limit:
            raise QuotaExceeded(
                f"quota {source}: you have {active} active tasks (QUEUED, INITIALIZING, "
                f"RUNNING or CANCELING), the most allowed ({limit}); try again when some "
                "have ended",
                config.retry_after_s,
            )

    def owner_limit(self, caller: Identity | None) -> tuple[int | None, str]:
        """The caller's limit of active tasks, and the setting it comes from."""
        config = self._config
        if caller is not None:
            if caller.quotas.max_active_tasks is not None:
                return (
                    caller.quotas.max_active_tasks,
                    f"max_active_tasks of user {caller.subject} (users file)",
                )
            if caller.subject in config.users:
                return config.users[caller.subject], f"users.{caller.subject}"
            granted = [(n, g) for g, n in config.groups.items() if g in caller.groups]
            if granted:
                limit, group = max(granted)
                return limit, f"groups.{group}"
        return config.max_active_tasks_per_owner, "max_active_tasks_per_owner"
