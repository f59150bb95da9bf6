"""The TES OpenAPI document TESK serves: the official file plus TESK's patch, loadable offline."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

API_DIR = Path(__file__).parent
SPEC_FILE = API_DIR / "tes-1.1.0.openapi.yaml"
PATCH_FILE = API_DIR / "tes-1.1.0.patch.yaml"

# The GA4GH service-info schemas that tes-1.1.0.patch.yaml refers to instead of their internet URL.
_SERVICE_INFO_SCHEMAS = ("Service", "ServiceType")


def service_info_schemas_patch() -> dict[str, Any]:
    """An inline FOCA patch adding the service-info 1.0.0 schemas that FOCA bundles."""
    text = files("foca.utils").joinpath("service-info.yaml").read_text(encoding="utf-8")
    schemas = yaml.safe_load(text)["components"]["schemas"]
    return {"components": {"schemas": {name: schemas[name] for name in _SERVICE_INFO_SCHEMAS}}}


def serves_tes(paths: Path | list[Path]) -> bool:
    """Whether an `api.specs[].path` entry is TESK's TES document."""
    candidates = paths if isinstance(paths, list) else [paths]
    return any(path.resolve() == SPEC_FILE.resolve() for path in candidates)
