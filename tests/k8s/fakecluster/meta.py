"""Object metadata helpers: API timestamps, generated names, nested access, conditions."""

from __future__ import annotations

import copy
import json
import random
import uuid
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]

# The alphabet and length of the suffix the API server appends to `generateName`
# (no vowels, no confusable characters).
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_SUFFIX_LEN = 5
_MAX_NAME = 63


def now() -> datetime:
    return datetime.now(UTC)


def timestamp(moment: datetime | None = None) -> str:
    """A metav1.Time: RFC 3339 in UTC with whole seconds, like every API timestamp."""
    return (moment or now()).strftime("%Y-%m-%dT%H:%M:%SZ")


def timestamp_nano(moment: datetime | None = None) -> str:
    """The RFC 3339 timestamp with nanoseconds that `kubectl logs --timestamps` prints."""
    moment = moment or now()
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}000Z"


def parse_timestamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def new_uid() -> str:
    return str(uuid.uuid4())


def generate_name(prefix: str) -> str:
    """`generateName` + a random suffix, the prefix cut so the name stays a valid label."""
    prefix = prefix[: _MAX_NAME - _SUFFIX_LEN]
    return prefix + "".join(random.choice(_NAME_ALPHABET) for _ in range(_SUFFIX_LEN))


def deep_copy(obj: Obj) -> Obj:
    return copy.deepcopy(obj)


def canonical(obj: Any) -> str:
    """A stable text form of a JSON value, to tell whether an update changed anything."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def dig(obj: Any, *path: str | int, default: Any = None) -> Any:
    """obj[path[0]][path[1]]... or `default` when any step is missing."""
    current = obj
    for step in path:
        if isinstance(step, int):
            if not isinstance(current, list) or not -len(current) <= step < len(current):
                return default
            current = current[step]
        else:
            if not isinstance(current, dict) or step not in current:
                return default
            current = current[step]
    return current if current is not None else default


def metadata(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
        obj["metadata"] = meta
    return meta


def labels_of(obj: Obj) -> dict[str, str]:
    labels = dig(obj, "metadata", "labels", default={})
    return labels if isinstance(labels, dict) else {}


def owner_uids(obj: Obj) -> list[str]:
    refs = dig(obj, "metadata", "ownerReferences", default=[])
    return [r["uid"] for r in refs if isinstance(r, dict) and isinstance(r.get("uid"), str)]


def set_condition(
    conditions: list[Obj],
    kind: str,
    status: str,
    *,
    reason: str | None = None,
    message: str | None = None,
    probe_time: bool = False,
) -> bool:
    """Set a status condition of `kind`; lastTransitionTime changes only when status changes.

    Returns whether anything changed."""
    stamp = timestamp()
    for condition in conditions:
        if condition.get("type") == kind:
            before = canonical(condition)
            if condition.get("status") != status:
                condition["lastTransitionTime"] = stamp
            condition["status"] = status
            _set_or_drop(condition, "reason", reason)
            _set_or_drop(condition, "message", message)
            if probe_time:
                condition["lastProbeTime"] = stamp
            return canonical(condition) != before
    condition = {"type": kind, "status": status, "lastTransitionTime": stamp}
    condition["lastProbeTime"] = stamp if probe_time else None
    _set_or_drop(condition, "reason", reason)
    _set_or_drop(condition, "message", message)
    conditions.append(condition)
    return True


def _set_or_drop(target: Obj, key: str, value: str | None) -> None:
    if value is None:
        target.pop(key, None)
    else:
        target[key] = value
