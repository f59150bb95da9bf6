"""docs/deployment.md documents the chart's values: every top-level key, and no unknown key."""

from __future__ import annotations

import re
import shlex
from typing import Any

import yaml

from tests.deployment.chart import CHART, KIND_VALUES, REPO, WALK_VALUES

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
    for section in (
        *("tasks", "taskmaster", "executors", "filer"),
        *("limits", "auth", "database", "persistence"),
    ):
        for name, value in VALUES[section].items():
            if isinstance(value, dict):
                for inner in value:
                    assert f"{section}.{name}.{inner}" in keys, f"{section}.{name}.{inner}"
            else:
                assert f"{section}.{name}" in keys, f"{section}.{name}"


def test_the_first_task_walk_installs_what_ci_runs() -> None:
    """Section 1's `helm install` uses the values test_chart_serves_tasks.py runs a task with."""
    walk = DOC.read_text().split("## 1. ", 1)[1].split("\n## ", 1)[0]
    (command,) = [
        block
        for block in re.findall(r"```sh\n(.*?)```", walk, flags=re.DOTALL)
        if "helm install" in block
    ]
    words = shlex.split(command.replace("\\\n", " "))
    values = [words[i + 1] for i, word in enumerate(words) if word == "--values"]
    sets = dict(words[i + 1].split("=", 1) for i, word in enumerate(words) if word == "--set")
    assert [REPO / path for path in values] == [KIND_VALUES]
    assert sets == {key: str(value) for key, value in WALK_VALUES.items()}
