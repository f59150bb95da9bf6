"""What the API server does to an object before storing it: decode checks, defaults,
admission (service accounts, storage classes, PVC protection) and validation (422 Invalid)."""

from __future__ import annotations

import base64
import binascii
import posixpath
import re
from collections.abc import Callable
from typing import Any

from . import errors
from .errors import ApiError, FieldError
from .meta import Obj, canonical, deep_copy, dig, generate_name, new_uid
from .quantity import parse_quantity
from .resources import BY_PLURAL, Resource
from .store import Store

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
_JOB_LABELS = ("batch.kubernetes.io/controller-uid", "batch.kubernetes.io/job-name")
_LEGACY_JOB_LABELS = ("controller-uid", "job-name")
PVC_PROTECTION = "kubernetes.io/pvc-protection"

Errors = list[FieldError]


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
        _DEFAULTS.get(resource.plural, _no_defaults)(obj)
        self._admit(resource, obj)
        problems = _validate_meta(resource, obj)
        problems += _VALIDATORS.get(resource.plural, _no_checks)(obj)
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
        problems = _validate_meta(resource, new, creating=False)
        problems += _VALIDATORS.get(resource.plural, _no_checks)(new)
        problems += _IMMUTABLE.get(resource.plural, _no_immutability)(old, new)
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


# ---------------------------------------------------------------------- defaults


def _no_defaults(obj: Obj) -> None:
    return None


def _default_pod(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    if isinstance(spec, dict):
        default_pod_spec(spec)
    status = obj.setdefault("status", {})
    status.setdefault("phase", "Pending")
    status.setdefault("qosClass", qos_class(spec if isinstance(spec, dict) else {}))


def default_pod_spec(spec: Obj) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("priority", 0)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    account = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    spec["serviceAccountName"] = account
    spec["serviceAccount"] = account
    tolerations = spec.setdefault("tolerations", [])
    if isinstance(tolerations, list):
        for taint in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
            if not any(isinstance(t, dict) and t.get("key") == taint for t in tolerations):
                tolerations.append(
                    {
                        "key": taint,
                        "operator": "Exists",
                        "effect": "NoExecute",
                        "tolerationSeconds": 300,
                    }
                )
    for field in ("containers", "initContainers"):
        for container in spec.get(field) or []:
            if not isinstance(container, dict):
                continue
            container.setdefault("terminationMessagePath", "/dev/termination-log")
            container.setdefault("terminationMessagePolicy", "File")
            image = str(container.get("image", ""))
            tagged = ":" in image.rsplit("/", 1)[-1] or "@" in image
            latest = not tagged or image.endswith(":latest")
            container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
            resources = container.setdefault("resources", {})
            if (
                isinstance(resources, dict)
                and resources.get("limits")
                and not resources.get("requests")
            ):
                # Requests default to the limits when only limits are given.
                resources["requests"] = dict(resources["limits"])
    for volume in spec.get("volumes") or []:
        if isinstance(volume, dict):
            for source in ("configMap", "secret"):
                if isinstance(volume.get(source), dict):
                    volume[source].setdefault("defaultMode", 0o644)
            if isinstance(volume.get("emptyDir"), dict) is False and "emptyDir" in volume:
                volume["emptyDir"] = {}


def qos_class(spec: Obj) -> str:
    containers = [c for c in spec.get("containers") or [] if isinstance(c, dict)]
    requests_any = False
    guaranteed = True
    for container in containers:
        resources = container.get("resources") or {}
        requests = resources.get("requests") or {}
        limits = resources.get("limits") or {}
        if requests or limits:
            requests_any = True
        for name in ("cpu", "memory"):
            if name not in limits or str(requests.get(name, limits[name])) != str(limits[name]):
                guaranteed = False
    if not requests_any:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _default_job(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    if not isinstance(spec, dict):
        return
    spec.setdefault("parallelism", 1)
    spec.setdefault("completions", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("manualSelector", None)
    if spec.get("manualSelector") is None:
        spec.pop("manualSelector")
    spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
    template = spec.get("template")
    if isinstance(template, dict) and isinstance(template.get("spec"), dict):
        default_pod_spec(template["spec"])
    obj.setdefault("status", {})


def label_job_template(job: Obj) -> None:
    """Selector and template labels the API server gives a Job once its uid is known."""
    uid = job["metadata"]["uid"]
    name = job["metadata"]["name"]
    spec = job["spec"]
    if not spec.get("manualSelector"):
        spec["selector"] = {"matchLabels": {_JOB_LABELS[0]: uid}}
    labels = spec["template"].setdefault("metadata", {}).setdefault("labels", {})
    labels.update(
        {
            _JOB_LABELS[0]: uid,
            _JOB_LABELS[1]: name,
            _LEGACY_JOB_LABELS[0]: uid,
            _LEGACY_JOB_LABELS[1]: name,
        }
    )


def _default_pvc(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    if isinstance(spec, dict):
        spec.setdefault("volumeMode", "Filesystem")
    obj.setdefault("status", {})["phase"] = "Pending"


def _default_namespace(obj: Obj) -> None:
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    obj.setdefault("status", {})["phase"] = "Active"
    labels = obj["metadata"].setdefault("labels", {})
    labels["kubernetes.io/metadata.name"] = obj["metadata"].get("name", "")


def _default_secret(obj: Obj) -> None:
    obj.setdefault("type", "Opaque")
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict):
        data = obj.setdefault("data", {})
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()


_DEFAULTS: dict[str, Callable[[Obj], None]] = {
    "pods": _default_pod,
    "jobs": _default_job,
    "persistentvolumeclaims": _default_pvc,
    "namespaces": _default_namespace,
    "secrets": _default_secret,
}


# ---------------------------------------------------------------------- validation


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
