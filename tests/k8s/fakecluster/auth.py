"""Who makes a request (bearer tokens) and whether RBAC lets them (Roles and bindings)."""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass

from .meta import Obj, dig
from .resources import BY_PLURAL
from .store import Store

ADMIN_GROUP = "system:masters"


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...]

    @property
    def service_account(self) -> tuple[str, str] | None:
        """(namespace, name) for a service account user."""
        parts = self.name.split(":")
        if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"]:
            return parts[2], parts[3]
        return None


ANONYMOUS = User("system:anonymous", ("system:unauthenticated",))
ADMIN = User("fakecluster-admin", (ADMIN_GROUP, "system:authenticated"))


class Tokens:
    """Bearer tokens the fake API server accepts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users: dict[str, User] = {}
        self.admin_token = self.issue(ADMIN)

    def issue(self, user: User) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._users[token] = user
        return token

    def for_service_account(self, namespace: str, name: str) -> str:
        user = User(
            f"system:serviceaccount:{namespace}:{name}",
            (
                "system:serviceaccounts",
                f"system:serviceaccounts:{namespace}",
                "system:authenticated",
            ),
        )
        return self.issue(user)

    def user(self, authorization: str | None) -> User | None:
        """The user of an Authorization header; ANONYMOUS without one, None for a bad token."""
        if not authorization:
            return ANONYMOUS
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return None
        with self._lock:
            return self._users.get(token.strip())


@dataclass(frozen=True)
class Attributes:
    user: User
    verb: str
    group: str
    resource: str
    subresource: str | None
    namespace: str
    name: str


class Rbac:
    """The RBAC authorizer over Role/ClusterRole/RoleBinding/ClusterRoleBinding objects."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def allows(self, request: Attributes) -> bool:
        if ADMIN_GROUP in request.user.groups:
            return True
        for binding in self._bindings(request.namespace):
            if not any(
                _subject_matches(s, request.user, binding) for s in binding.get("subjects") or []
            ):
                continue
            for rule in self._rules(binding):
                if _rule_allows(rule, request):
                    return True
        return False

    def _bindings(self, namespace: str) -> list[Obj]:
        found, _ = self._store.list(BY_PLURAL["clusterrolebindings"])
        if namespace:
            local, _ = self._store.list(BY_PLURAL["rolebindings"], namespace)
            found += local
        return found

    def _rules(self, binding: Obj) -> list[Obj]:
        ref = binding.get("roleRef") or {}
        if ref.get("kind") == "ClusterRole":
            role = self._store.try_get(BY_PLURAL["clusterroles"], "", ref.get("name", ""))
        else:
            role = self._store.try_get(
                BY_PLURAL["roles"],
                dig(binding, "metadata", "namespace", default=""),
                ref.get("name", ""),
            )
        return list((role or {}).get("rules") or [])


def _subject_matches(subject: Obj, user: User, binding: Obj) -> bool:
    kind = subject.get("kind")
    if kind == "ServiceAccount":
        account = user.service_account
        namespace = subject.get("namespace") or dig(binding, "metadata", "namespace", default="")
        return account == (namespace, subject.get("name"))
    if kind == "User":
        return subject.get("name") == user.name
    if kind == "Group":
        return subject.get("name") in user.groups
    return False


def _rule_allows(rule: Obj, request: Attributes) -> bool:
    verbs = rule.get("verbs") or []
    if "*" not in verbs and request.verb not in verbs:
        return False
    groups = rule.get("apiGroups") or []
    if "*" not in groups and request.group not in groups:
        return False
    wanted = request.resource + (f"/{request.subresource}" if request.subresource else "")
    resources = rule.get("resources") or []
    if not any(
        r in ("*", wanted)
        or (request.subresource and r == f"{request.resource}/*")
        or (r == f"*/{request.subresource}" if request.subresource else False)
        for r in resources
    ):
        return False
    names = rule.get("resourceNames") or []
    return not names or request.name in names
