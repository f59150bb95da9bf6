"""PATCH bodies: JSON merge patch, strategic merge patch (common cases), JSON patch."""

from __future__ import annotations

import copy
from typing import Any

from .errors import ApiError

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"

# Lists that strategic merge patch merges element-wise by a key (patchMergeKey in the API
# types); every other list is replaced. `finalizers` merges as a set of strings.
_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "env": "name",
    "ports": "containerPort",
    "conditions": "type",
    "ownerReferences": "uid",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "secrets": "name",
}
_SET_LISTS = {"finalizers"}


def apply_patch(content_type: str, target: dict[str, Any], patch: Any) -> dict[str, Any]:
    kind = content_type.split(";")[0].strip().lower()
    if kind == MERGE_PATCH:
        return _as_object(merge_patch(target, _require_object(patch)))
    if kind == STRATEGIC_MERGE_PATCH:
        return _as_object(strategic_merge_patch(target, _require_object(patch)))
    if kind == JSON_PATCH:
        return _as_object(json_patch(target, patch))
    if kind == APPLY_PATCH:
        raise ApiError(415, "server-side apply is not supported by the fake API server")
    raise ApiError(
        415,
        f"the body of the request was in an unknown format - accepted media types include: "
        f"{JSON_PATCH}, {MERGE_PATCH}, {STRATEGIC_MERGE_PATCH}",
    )


def _require_object(patch: Any) -> dict[str, Any]:
    if not isinstance(patch, dict):
        raise ApiError(400, "the patch must be a JSON object")
    return patch


def _as_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ApiError(422, "the patch turned the object into something that is not an object")
    return value


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: Any, patch: dict[str, Any]) -> Any:
    """Kubernetes strategic merge for maps and the keyed lists of the built-in types.

    Directives supported: `$patch: replace|delete` on maps and list elements,
    `$deleteFromPrimitiveList/<field>`; `$setElementOrder/<field>` and `$retainKeys` are
    accepted and ignored (element order is the merge order)."""
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    deletions: dict[str, list[Any]] = {}
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$retainKeys", "$patch"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            deletions[key.split("/", 1)[1]] = list(value or [])
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            merged = strategic_merge_patch(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _merge_list(key, result.get(key), value)
        else:
            result[key] = copy.deepcopy(value)
    for key, doomed in deletions.items():
        if isinstance(result.get(key), list):
            result[key] = [item for item in result[key] if item not in doomed]
    return result


def _merge_list(field: str, current: Any, patch: list[Any]) -> list[Any]:
    existing = list(current) if isinstance(current, list) else []
    if field in _SET_LISTS:
        merged = list(existing)
        for item in patch:
            if item not in merged:
                merged.append(copy.deepcopy(item))
        return merged
    merge_key = _MERGE_KEYS.get(field)
    if merge_key is None or not all(isinstance(item, dict) for item in patch):
        return [copy.deepcopy(item) for item in patch if not _is_directive(item)]
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
        return [copy.deepcopy(i) for i in patch if not _is_directive(i)]
    merged = [copy.deepcopy(item) for item in existing]
    for item in patch:
        wanted = item.get(merge_key)
        index = next(
            (
                i
                for i, old in enumerate(merged)
                if isinstance(old, dict) and old.get(merge_key) == wanted
            ),
            None,
        )
        if item.get("$patch") == "delete":
            if index is not None:
                del merged[index]
            continue
        if index is None:
            merged.append(strategic_merge_patch({}, item))
        else:
            merged[index] = strategic_merge_patch(merged[index], item)
    return merged


def _is_directive(item: Any) -> bool:
    return isinstance(item, dict) and "$patch" in item


def json_patch(target: dict[str, Any], operations: Any) -> Any:
    """RFC 6902: add, remove, replace, move, copy, test."""
    if not isinstance(operations, list):
        raise ApiError(400, "a JSON patch must be a list of operations")
    document: Any = copy.deepcopy(target)
    for number, operation in enumerate(operations):
        if not isinstance(operation, dict) or "op" not in operation or "path" not in operation:
            raise ApiError(400, f"JSON patch operation {number} needs 'op' and 'path'")
        op = operation["op"]
        path = _pointer(operation["path"])
        if op == "add":
            document = _add(document, path, copy.deepcopy(operation.get("value")))
        elif op == "remove":
            document = _remove(document, path)
        elif op == "replace":
            _get(document, path)  # the target must exist
            document = _add(_remove(document, path), path, copy.deepcopy(operation.get("value")))
        elif op in ("move", "copy"):
            source = _pointer(operation.get("from", ""))
            value = copy.deepcopy(_get(document, source))
            if op == "move":
                document = _remove(document, source)
            document = _add(document, path, value)
        elif op == "test":
            if _get(document, path) != operation.get("value"):
                raise ApiError(422, f"JSON patch test operation {number} failed at {path}")
        else:
            raise ApiError(400, f"unknown JSON patch operation {op!r}")
    return document


def _pointer(text: Any) -> list[str]:
    if not isinstance(text, str) or (text and not text.startswith("/")):
        raise ApiError(400, f"invalid JSON pointer {text!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in text.split("/")[1:]]


def _parent(document: Any, path: list[str]) -> Any:
    return _get(document, path[:-1])


def _get(document: Any, path: list[str]) -> Any:
    current = document
    for part in path:
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            raise ApiError(422, f"JSON patch path /{'/'.join(path)} does not exist")
    return current


def _add(document: Any, path: list[str], value: Any) -> Any:
    if not path:
        return value
    parent = _parent(document, path)
    last = path[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent):
            parent.insert(int(last), value)
        else:
            raise ApiError(422, f"JSON patch index {last!r} is out of range")
    else:
        raise ApiError(422, f"JSON patch cannot add below a scalar at /{'/'.join(path)}")
    return document


def _remove(document: Any, path: list[str]) -> Any:
    if not path:
        raise ApiError(422, "JSON patch cannot remove the whole document")
    parent = _parent(document, path)
    last = path[-1]
    if isinstance(parent, dict) and last in parent:
        del parent[last]
    elif isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        del parent[int(last)]
    else:
        raise ApiError(422, f"JSON patch path /{'/'.join(path)} does not exist")
    return document
