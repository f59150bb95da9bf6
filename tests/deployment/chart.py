"""Where the chart and its values files are, and helpers to pick rendered objects."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deployment" / "charts" / "tesk"
FETCH_HELM = REPO / "scripts" / "fetch-helm.sh"
HELM = REPO / ".cache" / "bin" / "helm"
# Every values file shipped with the chart or the docs; each must render into valid manifests.
SHIPPED_VALUES = sorted(
    [*(CHART / "ci").glob("*.yaml"), *(REPO / "deployment" / "examples").glob("*.yaml")]
)

RELEASE = "tesk"
NAMESPACE = "tesk"

# The values of the walk from nothing to a first task in docs/deployment.md, which
# test_chart_serves_tasks.py runs (test_docs.py keeps the page and this the same).
KIND_VALUES = REPO / "deployment" / "examples" / "kind-values.yaml"
USERS_SECRET = "tesk-users"
WALK_VALUES = {"auth.mode": "basic", "auth.basic.existingSecret": USERS_SECRET}

Manifest = dict[str, Any]


@dataclass(frozen=True)
class HelmResult:
    returncode: int
    stdout: str
    stderr: str


def find(objects: list[Manifest], kind: str, name: str | None = None) -> list[Manifest]:
    return [
        o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]


def one(objects: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    found = find(objects, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def values_id(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def set_args(overrides: dict[str, object]) -> list[str]:
    """`--set-json`, so that 0.5 stays a number (plain `--set` makes it a string)."""
    args: list[str] = []
    for key, value in overrides.items():
        args += ["--set-json", f"{key}={json.dumps(value)}"]
    return args


def values_args(values_files: Iterable[Path], overrides: dict[str, object]) -> list[str]:
    args: list[str] = []
    for values_file in values_files:
        args += ["--values", str(values_file)]
    return args + set_args(overrides)
