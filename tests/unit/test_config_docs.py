"""docs/configuration.md documents every key of `custom` (tesk/config.py) with its default."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from tesk import settings as settings_module
from tesk.cli import serve
from tesk.config import CustomConfig

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def settings(model: type[BaseModel], prefix: str = "") -> dict[str, Any]:
    """Every leaf setting of `model` as dotted key -> default."""
    leaves: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            leaves.update(settings(annotation, f"{prefix}{name}."))
        else:
            leaves[f"{prefix}{name}"] = field.get_default(call_default_factory=True)
    return leaves


def documented() -> dict[str, str]:
    """Dotted key -> the default column of its row, from the tables under `custom`."""
    text = DOC.read_text().split("## `custom`", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, str] = {}
    section = ""
    for line in text.splitlines():
        heading = re.match(r"### (?:`(\w+)`|Top level)", line)
        if heading:
            section = f"{heading.group(1)}." if heading.group(1) else ""
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[0].startswith("`"):
            continue
        for key in re.findall(r"`([\w.]+)`", cells[0]):
            rows[f"{section}{key}"] = cells[1]
    return rows


def test_every_setting_is_documented() -> None:
    missing = sorted(set(settings(CustomConfig)) - set(documented()))
    assert not missing, f"add to docs/configuration.md: {missing}"


def test_every_documented_setting_exists() -> None:
    stale = sorted(set(documented()) - set(settings(CustomConfig)))
    assert not stale, f"docs/configuration.md documents unknown settings: {stale}"


@pytest.mark.parametrize(
    ("key", "default"),
    [
        (key, default)
        for key, default in settings(CustomConfig).items()
        if isinstance(default, (bool, int, float, str)) and not isinstance(default, Path)
    ],
)
def test_documented_defaults_are_the_real_ones(key: str, default: object) -> None:
    cell = documented().get(key)
    if cell is None:
        pytest.skip("not documented (reported by test_every_setting_is_documented)")
    if isinstance(default, bool):
        expected = [str(default).lower()]
    elif isinstance(default, int | float) and default >= 1024 and default % 1024 == 0:
        size = int(default)
        expected = [str(size), f"{size // 1024} KiB", f"{size // 1024**2} MiB"]
    elif isinstance(default, float):
        expected = [f"{default:g}", str(default)]
    else:
        expected = [str(default)]
    assert any(value in cell for value in expected), f"{key}: {cell!r} should say {expected[0]}"


def variables_and_flags() -> list[tuple[str, str]]:
    """(variable, flag) of each row of the table of environment variables and flags."""
    text = DOC.read_text().split("## Environment variables and flags", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) > 2 and (cells[0].startswith("`") or cells[1].startswith("`")):
            variable = re.findall(r"`(TESK_\w+)`", cells[0])
            flag = re.findall(r"`(--[\w-]+)", cells[1])
            rows.append((variable[0] if variable else "", flag[0] if flag else ""))
    return rows


def test_documented_variables_and_flags_exist() -> None:
    variables = {value for name, value in vars(settings_module).items() if name.startswith("ENV_")}
    flags = {option for param in serve.params for option in param.opts}
    rows = variables_and_flags()
    assert len(rows) >= 9
    for variable, flag in rows:
        assert not variable or variable in variables, variable
        assert not flag or flag in flags, flag
    assert variables <= {variable for variable, _ in rows}
    assert flags - {"--help"} <= {flag for _, flag in rows}
