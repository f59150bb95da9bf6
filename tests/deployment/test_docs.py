"""docs/deployment.md documents the chart's values: every top-level key, and no unknown key."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tests.deployment.chart import CHART, REPO

DOC = REPO / "docs" / "deployment.md"
VALUES: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())


def documented_keys() -> list[str]:
    """Keys in the first column of the configuration table: "| `tasks.namespace` | ..." rows."""
    return re.findall(r"^\| `([A-Za-z][\w.]*)` \|", DOC.read_text(), flags=re.MULTILINE)


def exists(path: str) -> bool:
    node: Any = VALUES
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def test_every_top_level_value_is_documented() -> None:
    documented_roots = {key.split(".")[0] for key in documented_keys()}
    missing = sorted(set(VALUES) - documented_roots)
    assert not missing, f"add to the table in docs/deployment.md: {missing}"


def test_every_documented_key_exists() -> None:
    keys = documented_keys()
    assert len(keys) > len(VALUES)
    stale = [key for key in keys if not exists(key)]
    assert not stale, f"docs/deployment.md documents keys values.yaml does not have: {stale}"


def test_every_leaf_of_the_task_and_filer_settings_is_documented() -> None:
    """The settings operators tune most are documented key by key, not only by their section."""
    keys = set(documented_keys())
    for section in ("tasks", "filer", "limits", "database", "persistence"):
        for name, value in VALUES[section].items():
            if isinstance(value, dict):
                for inner in value:
                    assert f"{section}.{name}.{inner}" in keys, f"{section}.{name}.{inner}"
            else:
                assert f"{section}.{name}" in keys, f"{section}.{name}"
