"""What the API server does to an object before storing it: decode checks, defaults,
admission (service accounts, storage classes, PVC protection) and validation (422 Invalid)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import errors
from .defaults import apply_defaults, label_job_template
from .errors import ApiError
from .meta import Obj, deep_copy, dig, generate_name, new_uid
from .resources import BY_PLURAL, Resource
from .store import Store
from .validation import immutability, validate

PVC_PROTECTION = "kubernetes.io/pvc-protection"


class Admission:
    def __init__(self, store: Store, default_storage_class: Callable[[], str | None]) -> None:
        self._store = store
        self._default_storage_class = default_storage_class

    # ------------------------------------------------------------------ create

    def for_create(self, resource: Resource, body: Any, namespace: str) -> Obj:
        obj = _decode(resource, body)
        meta = obj["metadata"]
        if resource.namespaced:
            given = meta.get("namespace")
            if given and given != namespace:
                raise ApiError(
                    400,
                    "the namespace of the provided object does not match the namespace sent on "
                    "the request",
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = generate_name(str(meta["generateName"]))
        meta["uid"] = new_uid()
        apply_defaults(resource.plural, obj)
        self._admit(resource, obj)
        problems = validate(resource, obj, creating=True)
        if problems:
            raise errors.invalid_object(
                resource.kind, meta.get("name", ""), problems, resource.group
            )
        if resource.plural == "jobs":
            label_job_template(obj)
        return obj

    def _admit(self, resource: Resource, obj: Obj) -> None:
        meta = obj["metadata"]
        if resource.plural == "pods":
            account = dig(obj, "spec", "serviceAccountName", default="default")
            namespace = meta["namespace"]
            if self._store.try_get(BY_PLURAL["serviceaccounts"], namespace, account) is None:
                raise ApiError(
                    403,
                    f'pods "{meta.get("name", "")}" is forbidden: error looking up service account '
                    f'{namespace}/{account}: serviceaccount "{account}" not found',
                    details={"name": meta.get("name", ""), "kind": "pods"},
                )
        elif resource.plural == "persistentvolumeclaims":
            spec = obj.setdefault("spec", {})
            if isinstance(spec, dict) and "storageClassName" not in spec:
                default = self._default_storage_class()
                if default:
                    spec["storageClassName"] = default
            finalizers = meta.setdefault("finalizers", [])
            if isinstance(finalizers, list) and PVC_PROTECTION not in finalizers:
                finalizers.append(PVC_PROTECTION)

    # ------------------------------------------------------------------ update

    def for_update(self, resource: Resource, old: Obj, body: Any, subresource: str | None) -> Obj:
        """The object to store for PUT/PATCH of `old` with `body` (the full new object)."""
        new = _decode(resource, body)
        name = old["metadata"]["name"]
        given = new["metadata"].get("name")
        if given and given != name:
            raise ApiError(
                400, f"the name of the object ({given}) does not match the name on the URL ({name})"
            )
        if resource.namespaced:
            given_ns = new["metadata"].get("namespace")
            if given_ns and given_ns != old["metadata"]["namespace"]:
                raise ApiError(
                    400,
                    "the namespace of the provided object does not match the namespace sent on "
                    "the request",
                )
        if subresource == "status":
            # Status writers change status (and metadata); never spec.
            if "spec" in old:
                new["spec"] = deep_copy(old["spec"])
            new["metadata"]["ownerReferences"] = deep_copy(old["metadata"].get("ownerReferences"))
            if new["metadata"]["ownerReferences"] is None:
                del new["metadata"]["ownerReferences"]
        elif resource.has_status:
            if "status" in old:
                new["status"] = deep_copy(old["status"])
            else:
                new.pop("status", None)
        problems = validate(resource, new, creating=False)
        problems += immutability(resource.plural, old, new)
        if problems:
            raise errors.invalid_object(resource.kind, name, problems, resource.group)
        return new


# ---------------------------------------------------------------------- decoding


def _decode(resource: Resource, body: Any) -> Obj:
    """The checks the API server's JSON decoding makes before anything else (400s)."""
    if not isinstance(body, dict):
        raise ApiError(
            400,
            f"{resource.kind} in version {resource.version!r} cannot be handled as a "
            f"{resource.kind}: the body must be a JSON object",
        )
    kind = body.get("kind")
    if kind and kind != resource.kind:
        raise ApiError(
            400,
            f'{kind} in version "{body.get("apiVersion", "")}" cannot be handled as a '
            f"{resource.kind}: no kind {kind!r} is registered for this endpoint",
        )
    api_version = body.get("apiVersion")
    if api_version and api_version != resource.api_version:
        raise ApiError(
            400,
            f"the API version in the data ({api_version}) does not match the expected API "
            f"version ({resource.api_version})",
        )
    obj = deep_copy(body)
    meta = obj.setdefault("metadata", {})
    if not isinstance(meta, dict):
        _type_error(resource, "metadata", "object")
    for field in ("labels", "annotations"):
        values = meta.get(field)
        if values is None:
            meta.pop(field, None)
            continue
        if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
            _type_error(resource, f"metadata.{field}", "map of strings")
    if resource.plural in ("configmaps", "secrets"):
        for field in ("data", "binaryData", "stringData"):
            values = obj.get(field)
            if values is not None and (
                not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values())
            ):
                _type_error(resource, field, "map of strings")
    for field in ("spec", "status"):
        if field in obj and obj[field] is not None and not isinstance(obj[field], dict):
            _type_error(resource, field, "object")
    return obj


def _type_error(resource: Resource, field: str, wanted: str) -> None:
    raise ApiError(
        400,
        f"{resource.kind} in version {resource.version!r} cannot be handled as a {resource.kind}: "
        f"json: cannot unmarshal {field} into Go struct field: want {wanted}",
    )
