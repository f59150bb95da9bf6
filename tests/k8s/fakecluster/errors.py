"""API errors as the Kubernetes API server reports them: `Status` objects with code and reason."""

from __future__ import annotations

from typing import Any

# HTTP code -> the `reason` the API server puts into a Status (metav1.StatusReason).
_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "AlreadyExists",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    500: "InternalError",
    504: "Timeout",
}


class ApiError(Exception):
    """An error the fake API server answers with; `status()` is the body a real server sends."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or _REASONS.get(code, "Unknown")
        self.details = details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def _details(kind: str, name: str, group: str = "") -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "kind": kind}
    if group:
        details["group"] = group
    return details


def not_found(plural: str, name: str, group: str = "") -> ApiError:
    qualified = f"{plural}.{group}" if group else plural
    return ApiError(404, f'{qualified} "{name}" not found', details=_details(plural, name, group))


def already_exists(plural: str, name: str, group: str = "") -> ApiError:
    qualified = f"{plural}.{group}" if group else plural
    return ApiError(
        409, f'{qualified} "{name}" already exists', details=_details(plural, name, group)
    )


def conflict(plural: str, name: str, why: str, group: str = "") -> ApiError:
    qualified = f"{plural}.{group}" if group else plural
    return ApiError(
        409,
        f'Operation cannot be fulfilled on {qualified} "{name}": {why}',
        reason="Conflict",
        details=_details(plural, name, group),
    )


def modified_conflict(plural: str, name: str, group: str = "") -> ApiError:
    return conflict(
        plural,
        name,
        "the object has been modified; please apply your changes to the latest version "
        "and try again",
        group,
    )


class FieldError:
    """One entry of `details.causes` of a 422 Invalid Status (field.Error in the API server)."""

    def __init__(self, kind: str, field: str, message: str) -> None:
        self.kind = kind  # FieldValueRequired, FieldValueInvalid, ...
        self.field = field
        self.message = message

    def text(self) -> str:
        return f"{self.field}: {self.message}"


def required(field: str, detail: str = "") -> FieldError:
    return FieldError(
        "FieldValueRequired", field, "Required value" + (f": {detail}" if detail else "")
    )


def invalid(field: str, value: Any, detail: str) -> FieldError:
    return FieldError("FieldValueInvalid", field, f"Invalid value: {_go_repr(value)}: {detail}")


def unsupported(field: str, value: Any, allowed: list[str]) -> FieldError:
    choices = ", ".join(f'"{a}"' for a in allowed)
    return FieldError(
        "FieldValueNotSupported",
        field,
        f"Unsupported value: {_go_repr(value)}: supported values: {choices}",
    )


def forbidden(field: str, detail: str) -> FieldError:
    return FieldError("FieldValueForbidden", field, f"Forbidden: {detail}")


def duplicate(field: str, value: Any) -> FieldError:
    return FieldError("FieldValueDuplicate", field, f"Duplicate value: {_go_repr(value)}")


def too_long(field: str, limit: int) -> FieldError:
    return FieldError("FieldValueTooLong", field, f"Too long: may not be more than {limit} bytes")


def not_found_field(field: str, value: Any) -> FieldError:
    return FieldError("FieldValueNotFound", field, f"Not found: {_go_repr(value)}")


def _go_repr(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace('"', '\\"') + '"'
    return str(value)


def invalid_object(kind: str, name: str, errors: list[FieldError], group: str = "") -> ApiError:
    """The 422 the API server answers for an object that fails validation."""
    qualified = f"{kind}.{group}" if group else kind
    texts = [e.text() for e in errors]
    summary = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    details = _details(kind, name, group)
    details["causes"] = [{"reason": e.kind, "message": e.message, "field": e.field} for e in errors]
    return ApiError(422, f'{qualified} "{name}" is invalid: {summary}', details=details)
