"""Helm for the chart tests: fetched by scripts/fetch-helm.sh, then rendered and parsed here."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
import yaml

from tests.deployment.chart import CHART, FETCH_HELM, NAMESPACE, RELEASE, REPO, HelmResult, Manifest


@pytest.fixture(scope="session")
def helm() -> Path:
    """The helm binary, or a failure that says why it could not be had (never a silent skip)."""
    fetched = subprocess.run(
        ["bash", str(FETCH_HELM)], cwd=REPO, capture_output=True, text=True, check=False
    )
    if fetched.returncode != 0:
        pytest.fail(
            f"helm is needed for the chart tests and scripts/fetch-helm.sh could not provide it "
            f"(exit {fetched.returncode}):\n{fetched.stderr.strip()}",
            pytrace=False,
        )
    return Path(fetched.stdout.strip().splitlines()[-1])


def _set_args(overrides: dict[str, object]) -> list[str]:
    """`--set-json`, so that 0.5 stays a number (plain `--set` makes it a string)."""
    args: list[str] = []
    for key, value in overrides.items():
        args += ["--set-json", f"{key}={json.dumps(value)}"]
    return args


@pytest.fixture(scope="session")
def run_helm(helm: Path) -> Callable[..., HelmResult]:
    def run(*args: str) -> HelmResult:
        done = subprocess.run(
            [str(helm), *args], cwd=REPO, capture_output=True, text=True, check=False
        )
        return HelmResult(done.returncode, done.stdout, done.stderr)

    return run


@pytest.fixture(scope="session")
def template(run_helm: Callable[..., HelmResult]) -> Callable[..., HelmResult]:
    """`helm template` with values files and `--set-json` overrides; the result, not raised."""

    def render(values_files: Iterable[Path] = (), **overrides: object) -> HelmResult:
        args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE]
        for values_file in values_files:
            args += ["--values", str(values_file)]
        return run_helm(*args, *_set_args(overrides))

    return render


@pytest.fixture(scope="session")
def render(template: Callable[..., HelmResult]) -> Callable[..., list[Manifest]]:
    """Rendered objects of a successful `helm template`."""

    def objects(values_files: Iterable[Path] = (), **overrides: object) -> list[Manifest]:
        result = template(values_files, **overrides)
        assert result.returncode == 0, f"helm template failed:\n{result.stderr}"
        return [doc for doc in yaml.safe_load_all(result.stdout) if doc]

    return objects
