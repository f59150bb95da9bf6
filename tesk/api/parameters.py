"""Connexion's query and path parameter validation, with each parameter's validator built once.

Connexion 2 deep-copies a parameter's definition and builds a new jsonschema validator for every
parameter of every request: a tenth of a GetTask's time (docs/performance.md). This validator
checks the same thing in the same order (type coercion, then the parameter's schema without its
`required` flag) with one validator per parameter definition, kept for the life of the app.
Form data, which the TES API has none of, still goes through Connexion's own code.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

from connexion.decorators.validation import (
    ParameterValidator,
    TypeValidationError,
    coerce_type,
)
from connexion.utils import is_null, is_nullable
from jsonschema import (  # type: ignore[import-untyped]
    Draft4Validator,
    ValidationError,
    draft4_format_checker,
)

_lock = threading.Lock()
# id of a parameter definition -> (the definition, kept so that its id is never reused; validator)
_validators: dict[int, tuple[dict[str, Any], Any]] = {}


class CachedParameterValidator(ParameterValidator):  # type: ignore[misc]
    @staticmethod
    def validate_parameter(
        parameter_type: str, value: Any, param: dict[str, Any], param_name: str | None = None
    ) -> str | None:
        if value is None or parameter_type == "formdata":
            result: str | None = ParameterValidator.validate_parameter(
                parameter_type, value, param, param_name
            )
            return result
        if is_nullable(param) and is_null(value):
            return None
        try:
            converted = coerce_type(param, value, parameter_type, param_name)
        except TypeValidationError as exc:
            return str(exc)
        try:
            _validator(param).validate(converted)
        except ValidationError as exc:
            return str(exc)
        return None


def _validator(param: dict[str, Any]) -> Any:
    found = _validators.get(id(param))
    if found is not None and found[0] is param:
        return found[1]
    schema = copy.deepcopy(param)
    schema = schema.get("schema", schema)
    schema.pop("required", None)
    validator = Draft4Validator(schema, format_checker=draft4_format_checker)
    with _lock:
        _validators[id(param)] = (param, validator)
    return validator


VALIDATOR_MAP = {"parameter": CachedParameterValidator}
"""Connexion's `validator_map` for the TES specs."""
