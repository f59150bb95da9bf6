"""Label and field selectors with the grammar and semantics of the Kubernetes API server."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ApiError
from .meta import Obj, dig

_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # "=", "!=", "in", "notin", "exists", "!", "gt", "lt"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.operator == "=":
            return present and value == self.values[0]
        if self.operator == "in":
            return present and value in self.values
        if self.operator == "!=":
            return not present or value != self.values[0]
        if self.operator == "notin":
            return not present or value not in self.values
        if self.operator == "exists":
            return present
        if self.operator == "!":
            return not present
        if not present:
            return False
        try:
            number = int(str(value))
        except ValueError:
            return False
        bound = int(self.values[0])
        return number > bound if self.operator == "gt" else number < bound


@dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements


def _bad_selector(text: str, why: str) -> ApiError:
    return ApiError(400, f"unable to parse requirement: {why}: {text!r}")


def _check_key(key: str, text: str) -> str:
    if not key or len(key.split("/")[-1]) > 63 or not _LABEL_KEY.match(key):
        raise _bad_selector(text, f"invalid label key {key!r}")
    return key


def _check_value(value: str, text: str) -> str:
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        raise _bad_selector(text, f"invalid label value: {value!r}")
    return value


def _split_top_level(text: str) -> list[str]:
    """Split at commas that are not inside `( ... )`."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


_SET_RE = re.compile(r"^\s*(\S+?)\s+(in|notin)\s*\((.*)\)\s*$")
_CMP_RE = re.compile(r"^\s*([^\s=!<>]+)\s*(==|=|!=|>|<)\s*(.*?)\s*$")


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse `labelSelector` (equality, set-based, existence, gt/lt) or raise a 400 ApiError."""
    if text is None or not text.strip():
        return LabelSelector()
    requirements: list[Requirement] = []
    for raw in _split_top_level(text):
        part = raw.strip()
        if not part:
            raise _bad_selector(text, "found '', expected: identifier")
        set_match = _SET_RE.match(part)
        if set_match:
            key = _check_key(set_match.group(1), text)
            values = tuple(_check_value(v.strip(), text) for v in set_match.group(3).split(","))
            if set_match.group(2) == "in" and values == ("",):
                raise _bad_selector(text, "for 'in', 'notin' operators, values set can't be empty")
            requirements.append(Requirement(key, set_match.group(2), values))
            continue
        cmp_match = _CMP_RE.match(part)
        if cmp_match:
            key = _check_key(cmp_match.group(1), text)
            op = cmp_match.group(2)
            value = cmp_match.group(3)
            if op in (">", "<"):
                if not re.fullmatch(r"-?[0-9]+", value):
                    raise _bad_selector(text, "for 'Gt', 'Lt' operators, value must be an integer")
                requirements.append(Requirement(key, "gt" if op == ">" else "lt", (value,)))
            else:
                _check_value(value, text)
                requirements.append(Requirement(key, "!=" if op == "!=" else "=", (value,)))
            continue
        if part.startswith("!"):
            requirements.append(Requirement(_check_key(part[1:].strip(), text), "!"))
            continue
        if " " in part or "(" in part or ")" in part:
            raise _bad_selector(text, f"invalid requirement {part!r}")
        requirements.append(Requirement(_check_key(part, text), "exists"))
    return LabelSelector(tuple(requirements))


def selector_from_object(selector: Obj | None) -> LabelSelector:
    """A metav1.LabelSelector (matchLabels + matchExpressions), as Jobs carry it."""
    if not selector:
        return LabelSelector()
    requirements = [
        Requirement(key, "=", (str(value),))
        for key, value in (selector.get("matchLabels") or {}).items()
    ]
    operators = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for expression in selector.get("matchExpressions") or []:
        operator = operators[expression["operator"]]
        requirements.append(
            Requirement(expression["key"], operator, tuple(expression.get("values") or ()))
        )
    return LabelSelector(tuple(requirements))


# Field selectors: the API server supports only some fields per kind (plus metadata.name and
# metadata.namespace everywhere) and answers 400 for any other.
_FIELDS: dict[str, Callable[[Obj], Any]] = {
    "metadata.name": lambda o: dig(o, "metadata", "name", default=""),
    "metadata.namespace": lambda o: dig(o, "metadata", "namespace", default=""),
}
_KIND_FIELDS: dict[str, dict[str, Callable[[Obj], Any]]] = {
    "pods": {
        "spec.nodeName": lambda o: dig(o, "spec", "nodeName", default=""),
        "spec.restartPolicy": lambda o: dig(o, "spec", "restartPolicy", default=""),
        "spec.schedulerName": lambda o: dig(o, "spec", "schedulerName", default=""),
        "spec.serviceAccountName": lambda o: dig(o, "spec", "serviceAccountName", default=""),
        "spec.hostNetwork": lambda o: str(dig(o, "spec", "hostNetwork", default=False)).lower(),
        "status.phase": lambda o: dig(o, "status", "phase", default=""),
        "status.podIP": lambda o: dig(o, "status", "podIP", default=""),
        "status.nominatedNodeName": lambda o: dig(o, "status", "nominatedNodeName", default=""),
    },
    "jobs": {"status.successful": lambda o: str(dig(o, "status", "succeeded", default=0))},
    "secrets": {"type": lambda o: o.get("type", "")},
    "events": {
        "involvedObject.kind": lambda o: dig(o, "involvedObject", "kind", default=""),
        "involvedObject.namespace": lambda o: dig(o, "involvedObject", "namespace", default=""),
        "involvedObject.name": lambda o: dig(o, "involvedObject", "name", default=""),
        "involvedObject.uid": lambda o: dig(o, "involvedObject", "uid", default=""),
        "involvedObject.apiVersion": lambda o: dig(o, "involvedObject", "apiVersion", default=""),
        "involvedObject.resourceVersion": lambda o: dig(
            o, "involvedObject", "resourceVersion", default=""
        ),
        "involvedObject.fieldPath": lambda o: dig(o, "involvedObject", "fieldPath", default=""),
        "reason": lambda o: o.get("reason", ""),
        "reportingComponent": lambda o: o.get("reportingComponent", ""),
        "source": lambda o: dig(o, "source", "component", default=""),
        "type": lambda o: o.get("type", ""),
    },
    "namespaces": {"status.phase": lambda o: dig(o, "status", "phase", default="")},
    "persistentvolumeclaims": {},
}


@dataclass(frozen=True)
class FieldSelector:
    terms: tuple[tuple[Callable[[Obj], Any], bool, str], ...] = ()  # (getter, equal?, value)

    def matches(self, obj: Obj) -> bool:
        return all((str(getter(obj)) == value) == equal for getter, equal, value in self.terms)


def parse_field_selector(text: str | None, plural: str) -> FieldSelector:
    if text is None or not text.strip():
        return FieldSelector()
    supported = {**_FIELDS, **_KIND_FIELDS.get(plural, {})}
    terms: list[tuple[Callable[[Obj], Any], bool, str]] = []
    for raw in text.split(","):
        match = re.match(r"^\s*([^=!\s]+)\s*(==|=|!=)\s*(.*?)\s*$", raw)
        if not match:
            raise ApiError(400, f"invalid selector: {text!r}; can't understand {raw!r}")
        field, op, value = match.groups()
        if field not in supported:
            raise ApiError(400, f"field label not supported: {field}")
        terms.append((supported[field], op != "!=", value))
    return FieldSelector(tuple(terms))
