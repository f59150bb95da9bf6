"""Validation of objects as the API server does it: the field errors of a 422 Invalid."""

from __future__ import annotations

import base64
import binascii
import posixpath
import re
from collections.abc import Callable
from typing import Any

from . import errors
from .errors import FieldError
from .meta import Obj, canonical, deep_copy, dig
from .quantity import parse_quantity
from .resources import Resource

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")

_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
MAX_CONFIG_BYTES = 1024 * 1024
MAX_ANNOTATION_BYTES = 256 * 1024
_VOLUME_SOURCES = (
    "persistentVolumeClaim",
    "configMap",
    "secret",
    "emptyDir",
    "hostPath",
    "projected",
    "downwardAPI",
    "nfs",
    "csi",
    "ephemeral",
)

Errors = list[FieldError]


def validate(resource: Resource, obj: Obj, *, creating: bool) -> Errors:
    """Every problem of `obj` (metadata and kind-specific fields)."""
    problems = _validate_meta(resource, obj, creating=creating)
    return problems + _VALIDATORS.get(resource.plural, _no_checks)(obj)


def immutability(plural: str, old: Obj, new: Obj) -> Errors:
    """Changes of fields an update may not change."""
    return _IMMUTABLE.get(plural, _no_immutability)(old, new)


def _no_checks(obj: Obj) -> Errors:
    return []


def _check_name(value: str, field: str, *, label: bool = False, max_len: int = 253) -> Errors:
    problems: Errors = []
    if len(value) > max_len:
        problems.append(errors.invalid(field, value, f"must be no more than {max_len} characters"))
    pattern, message = (_DNS_LABEL, _LABEL_MSG) if label else (_DNS_SUBDOMAIN, _SUBDOMAIN_MSG)
    if not pattern.match(value):
        problems.append(errors.invalid(field, value, message))
    return problems


def _check_qualified_key(key: str, field: str) -> Errors:
    prefix, _, name = key.rpartition("/")
    problems: Errors = []
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        problems.append(errors.invalid(field, key, "prefix part " + _SUBDOMAIN_MSG))
    if not name or len(name) > 63 or not _QUALIFIED_NAME.match(name):
        problems.append(
            errors.invalid(
                field,
                key,
                "name part must consist of alphanumeric characters, '-', '_' or '.', and must "
                "start and end with an alphanumeric character, and be no more than 63 characters",
            )
        )
    return problems


def _validate_meta(resource: Resource, obj: Obj, *, creating: bool = True) -> Errors:
    meta = obj["metadata"]
    problems: Errors = []
    name = meta.get("name")
    if not name:
        problems.append(errors.required("metadata.name", "name or generateName is required"))
    elif creating:
        if resource.plural in ("namespaces",):
            problems += _check_name(name, "metadata.name", label=True, max_len=63)
        elif resource.plural not in ("events",):
            problems += _check_name(name, "metadata.name")
        if resource.plural == "jobs" and len(name) > 63:
            problems.append(
                errors.invalid("metadata.name", name, "must be no more than 63 characters")
            )
    for key, value in (meta.get("labels") or {}).items():
        problems += _check_qualified_key(key, "metadata.labels")
        if len(value) > 63:
            problems.append(
                errors.invalid("metadata.labels", value, "must be no more than 63 characters")
            )
        elif not _LABEL_VALUE.match(value):
            problems.append(errors.invalid("metadata.labels", value, _VALUE_MSG))
    annotations = meta.get("annotations") or {}
    for key in annotations:
        problems += _check_qualified_key(key.lower(), "metadata.annotations")
    if sum(len(k) + len(v) for k, v in annotations.items()) > MAX_ANNOTATION_BYTES:
        problems.append(errors.too_long("metadata.annotations", MAX_ANNOTATION_BYTES))
    refs = meta.get("ownerReferences") or []
    if not isinstance(refs, list):
        problems.append(errors.invalid("metadata.ownerReferences", refs, "must be a list"))
        refs = []
    controllers = 0
    for i, ref in enumerate(refs):
        field = f"metadata.ownerReferences[{i}]"
        if not isinstance(ref, dict):
            problems.append(errors.invalid(field, ref, "must be an object"))
            continue
        for required in ("apiVersion", "kind", "name", "uid"):
            if not ref.get(required):
                problems.append(errors.required(f"{field}.{required}"))
        controllers += bool(ref.get("controller"))
    if controllers > 1:
        problems.append(
            errors.invalid(
                "metadata.ownerReferences",
                refs,
                "Only one reference can have Controller set to true",
            )
        )
    finalizers = meta.get("finalizers") or []
    for i, finalizer in enumerate(finalizers):
        if not isinstance(finalizer, str) or (
            "/" not in finalizer
            and finalizer
            not in (
                "kubernetes",
                "orphan",
                "foregroundDeletion",
            )
        ):
            problems.append(
                errors.invalid(
                    f"metadata.finalizers[{i}]",
                    finalizer,
                    "name is neither a standard finalizer name nor is it fully qualified",
                )
            )
    return problems


def _validate_pod(obj: Obj) -> Errors:
    return validate_pod_spec(obj.get("spec") or {}, "spec")


def validate_pod_spec(spec: Obj, path: str, *, job: bool = False) -> Errors:
    problems: Errors = []
    volumes = spec.get("volumes") or []
    volume_names: set[str] = set()
    for i, volume in enumerate(volumes):
        field = f"{path}.volumes[{i}]"
        name = volume.get("name") if isinstance(volume, dict) else None
        if not name:
            problems.append(errors.required(f"{field}.name"))
            continue
        problems += _check_name(name, f"{field}.name", label=True, max_len=63)
        if name in volume_names:
            problems.append(errors.duplicate(f"{field}.name", name))
        volume_names.add(name)
        sources = [s for s in _VOLUME_SOURCES if s in volume]
        if not sources:
            problems.append(errors.required(field, "must specify a volume type"))
        elif len(sources) > 1:
            problems.append(
                errors.forbidden(f"{field}.{sources[1]}", "may not specify more than 1 volume type")
            )
        elif sources[0] == "persistentVolumeClaim" and not dig(volume, sources[0], "claimName"):
            problems.append(errors.required(f"{field}.persistentVolumeClaim.claimName"))
        elif sources[0] == "configMap" and not dig(volume, sources[0], "name"):
            problems.append(errors.required(f"{field}.configMap.name"))
        elif sources[0] == "secret" and not dig(volume, sources[0], "secretName"):
            problems.append(errors.required(f"{field}.secret.secretName"))
    containers = spec.get("containers")
    if not containers:
        problems.append(errors.required(f"{path}.containers"))
    names: set[str] = set()
    for field_name in ("initContainers", "containers"):
        for i, container in enumerate(spec.get(field_name) or []):
            problems += _validate_container(
                container, f"{path}.{field_name}[{i}]", volume_names, names
            )
    policy = spec.get("restartPolicy")
    allowed = ["OnFailure", "Never"] if job else ["Always", "OnFailure", "Never"]
    if policy not in allowed:
        problems.append(errors.unsupported(f"{path}.restartPolicy", policy, allowed))
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and (not isinstance(deadline, int) or deadline <= 0):
        problems.append(
            errors.invalid(f"{path}.activeDeadlineSeconds", deadline, "must be greater than 0")
        )
    grace = spec.get("terminationGracePeriodSeconds")
    if grace is not None and (not isinstance(grace, int) or grace < 0):
        problems.append(
            errors.invalid(
                f"{path}.terminationGracePeriodSeconds", grace, "must be greater than or equal to 0"
            )
        )
    account = spec.get("serviceAccountName")
    if account:
        problems += _check_name(account, f"{path}.serviceAccountName")
    return problems


def _validate_container(container: Any, path: str, volumes: set[str], names: set[str]) -> Errors:
    if not isinstance(container, dict):
        return [errors.invalid(path, container, "must be an object")]
    problems: Errors = []
    name = container.get("name")
    if not name:
        problems.append(errors.required(f"{path}.name"))
    else:
        problems += _check_name(name, f"{path}.name", label=True, max_len=63)
        if name in names:
            problems.append(errors.duplicate(f"{path}.name", name))
        names.add(name)
    if not container.get("image"):
        problems.append(errors.required(f"{path}.image"))
    for field in ("command", "args"):
        value = container.get(field)
        if value is not None and (
            not isinstance(value, list) or not all(isinstance(v, str) for v in value)
        ):
            problems.append(errors.invalid(f"{path}.{field}", value, "must be a list of strings"))
    for i, env in enumerate(container.get("env") or []):
        field = f"{path}.env[{i}]"
        env_name = env.get("name") if isinstance(env, dict) else None
        if not env_name:
            problems.append(errors.required(f"{field}.name"))
        elif "=" in env_name or not env_name.isprintable():
            problems.append(
                errors.invalid(
                    f"{field}.name",
                    env_name,
                    "a valid environment variable name "
                    "must consist only of printable ASCII characters other than '='",
                )
            )
        if isinstance(env, dict) and "value" in env and env.get("valueFrom"):
            problems.append(
                errors.invalid(
                    f"{field}.valueFrom", "", "may not be specified when `value` is not empty"
                )
            )
        if (
            isinstance(env, dict)
            and env.get("value") is not None
            and not isinstance(env["value"], str)
        ):
            problems.append(errors.invalid(f"{field}.value", env["value"], "must be a string"))
    mount_paths: set[str] = set()
    for i, mount in enumerate(container.get("volumeMounts") or []):
        field = f"{path}.volumeMounts[{i}]"
        if not isinstance(mount, dict):
            problems.append(errors.invalid(field, mount, "must be an object"))
            continue
        if not mount.get("name"):
            problems.append(errors.required(f"{field}.name"))
        elif mount["name"] not in volumes:
            problems.append(errors.not_found_field(f"{field}.name", mount["name"]))
        mount_path = mount.get("mountPath")
        if not mount_path:
            problems.append(errors.required(f"{field}.mountPath"))
        elif mount_path in mount_paths:
            problems.append(errors.invalid(f"{field}.mountPath", mount_path, "must be unique"))
        else:
            mount_paths.add(mount_path)
        sub_path = mount.get("subPath")
        if sub_path and (posixpath.isabs(sub_path) or ".." in sub_path.split("/")):
            problems.append(
                errors.invalid(
                    f"{field}.subPath",
                    sub_path,
                    "must be a relative path without '..'",
                )
            )
    resources = container.get("resources") or {}
    for section in ("limits", "requests"):
        for resource_name, value in (resources.get(section) or {}).items():
            try:
                amount = parse_quantity(value)
            except ValueError as error:
                problems.append(
                    errors.invalid(
                        f"{path}.resources.{section}[{resource_name}]", value, str(error)
                    )
                )
                continue
            if amount < 0:
                problems.append(
                    errors.invalid(
                        f"{path}.resources.{section}[{resource_name}]",
                        value,
                        "must be greater than or equal to 0",
                    )
                )
    for resource_name, limit in (resources.get("limits") or {}).items():
        request = (resources.get("requests") or {}).get(resource_name)
        try:
            too_much = request is not None and parse_quantity(request) > parse_quantity(limit)
        except ValueError:
            continue
        if too_much:
            problems.append(
                errors.invalid(
                    f"{path}.resources.requests",
                    request,
                    f"must be less than or equal to {resource_name} limit of {limit}",
                )
            )
    return problems


def _validate_job(obj: Obj) -> Errors:
    spec = obj.get("spec") or {}
    problems: Errors = []
    template = spec.get("template")
    if not isinstance(template, dict) or not isinstance(template.get("spec"), dict):
        problems.append(errors.required("spec.template"))
    else:
        problems += validate_pod_spec(template["spec"], "spec.template.spec", job=True)
    for field, minimum in (
        ("backoffLimit", 0),
        ("parallelism", 0),
        ("completions", 0),
        ("ttlSecondsAfterFinished", 0),
        ("activeDeadlineSeconds", 1),
    ):
        value = spec.get(field)
        if value is not None and (not isinstance(value, int) or value < minimum):
            message = "must be greater than 0" if minimum else "must be greater than or equal to 0"
            problems.append(errors.invalid(f"spec.{field}", value, message))
    mode = spec.get("completionMode")
    if mode not in ("NonIndexed", "Indexed"):
        problems.append(errors.unsupported("spec.completionMode", mode, ["NonIndexed", "Indexed"]))
    return problems


def _validate_config_data(obj: Obj, *, secret: bool) -> Errors:
    problems: Errors = []
    total = 0
    seen: set[str] = set()
    fields = ("data",) if secret else ("data", "binaryData")
    for field in fields:
        for key, value in (obj.get(field) or {}).items():
            if not key or len(key) > 253 or not _CONFIG_KEY.match(key):
                problems.append(
                    errors.invalid(
                        f"{field}[{key}]",
                        key,
                        "a valid config key must consist of alphanumeric characters, '-', '_' "
                        "or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used "
                        "for validation is '[-._a-zA-Z0-9]+')",
                    )
                )
            if key in seen:
                problems.append(
                    errors.invalid(f"{field}[{key}]", key, "duplicate of key present in data")
                )
            seen.add(key)
            if field == "binaryData" or secret:
                try:
                    total += len(base64.b64decode(value, validate=True))
                except (binascii.Error, ValueError):
                    problems.append(errors.invalid(f"{field}[{key}]", "<value>", "illegal base64"))
            else:
                total += len(value.encode())
    if total > MAX_CONFIG_BYTES:
        problems.append(
            errors.FieldError(
                "FieldValueTooLong", "[]", f"Too long: must have at most {MAX_CONFIG_BYTES} bytes"
            )
        )
    return problems


def _validate_pvc(obj: Obj) -> Errors:
    spec = obj.get("spec") or {}
    problems: Errors = []
    modes = spec.get("accessModes")
    if not modes:
        problems.append(errors.required("spec.accessModes"))
    allowed = ["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"]
    for mode in modes or []:
        if mode not in allowed:
            problems.append(errors.unsupported("spec.accessModes", mode, allowed))
    storage = dig(spec, "resources", "requests", "storage")
    if storage is None:
        problems.append(errors.required("spec.resources[storage]"))
    else:
        try:
            if parse_quantity(storage) <= 0:
                problems.append(
                    errors.invalid("spec.resources[storage]", storage, "must be greater than zero")
                )
        except ValueError as error:
            problems.append(errors.invalid("spec.resources[storage]", storage, str(error)))
    return problems


_VALIDATORS: dict[str, Callable[[Obj], Errors]] = {
    "pods": _validate_pod,
    "jobs": _validate_job,
    "configmaps": lambda o: _validate_config_data(o, secret=False),
    "secrets": lambda o: _validate_config_data(o, secret=True),
    "persistentvolumeclaims": _validate_pvc,
}


# ---------------------------------------------------------------------- immutability


def _no_immutability(old: Obj, new: Obj) -> Errors:
    return []


def _pod_immutable(old: Obj, new: Obj) -> Errors:
    def mutable_removed(spec: Obj) -> Obj:
        spec = deep_copy(spec)
        for field in ("containers", "initContainers"):
            for container in spec.get(field) or []:
                container.pop("image", None)
        spec.pop("activeDeadlineSeconds", None)
        spec.pop("tolerations", None)
        return spec

    if canonical(mutable_removed(old.get("spec") or {})) != canonical(
        mutable_removed(new.get("spec") or {})
    ):
        return [
            errors.forbidden(
                "spec",
                "pod updates may not change fields other than `spec.containers[*].image`,"
                "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
                "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
                "(allow it to be set to 1 if it was previously negative)",
            )
        ]
    return []


def _job_immutable(old: Obj, new: Obj) -> Errors:
    problems: Errors = []
    old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
    for field in ("selector", "completionMode", "podFailurePolicy"):
        if canonical(old_spec.get(field)) != canonical(new_spec.get(field)):
            problems.append(
                errors.invalid(f"spec.{field}", new_spec.get(field), "field is immutable")
            )
    if not old_spec.get("suspend") and canonical(old_spec.get("template")) != canonical(
        new_spec.get("template")
    ):
        problems.append(errors.invalid("spec.template", "<template>", "field is immutable"))
    return problems


def _pvc_immutable(old: Obj, new: Obj) -> Errors:
    def without_requests(spec: Obj) -> Obj:
        spec = deep_copy(spec)
        spec.get("resources", {}).pop("requests", None)
        return spec

    if canonical(without_requests(old.get("spec") or {})) != canonical(
        without_requests(new.get("spec") or {})
    ):
        return [
            errors.forbidden(
                "spec",
                "spec is immutable after creation except resources.requests and "
                "volumeAttributesClassName for bound claims",
            )
        ]
    return []


def _configmap_immutable(old: Obj, new: Obj) -> Errors:
    if not old.get("immutable"):
        return []
    problems: Errors = []
    if not new.get("immutable"):
        problems.append(errors.forbidden("immutable", "field is immutable when `immutable` is set"))
    for field in ("data", "binaryData"):
        if canonical(old.get(field)) != canonical(new.get(field)):
            problems.append(errors.forbidden(field, "field is immutable when `immutable` is set"))
    return problems


_IMMUTABLE: dict[str, Callable[[Obj, Obj], Errors]] = {
    "pods": _pod_immutable,
    "jobs": _job_immutable,
    "persistentvolumeclaims": _pvc_immutable,
    "configmaps": _configmap_immutable,
    "secrets": _configmap_immutable,
}
