"""Helm for the chart tests: fetched by scripts/fetch-helm.sh, then rendered and parsed here."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
import yaml

from tests.deployment.chart import (
    CHART,
    FETCH_HELM,
    HELM,
    NAMESPACE,
    RELEASE,
    REPO,
    HelmResult,
    Manifest,
    values_args,
)


@pytest.fixture(scope="session")
def helm() -> Path:
    """The helm binary fetched by scripts/test-setup.sh, or a failure that says why (never a
    silent skip). The tests do not fetch it themselves: they only talk to 127.0.0.1."""
    if not HELM.is_file():
        pytest.fail(
            f"helm is needed for the chart tests and is not at {HELM}: run scripts/test-setup.sh "
            f"(it fetches helm with {FETCH_HELM.name} and says why when it cannot)",
            pytrace=False,
        )
    return HELM


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
        return run_helm(*args, *values_args(values_files, overrides))

    return render


@pytest.fixture(scope="session")
def render(template: Callable[..., HelmResult]) -> Callable[..., list[Manifest]]:
    """Rendered objects of a successful `helm template`."""

    def objects(values_files: Iterable[Path] = (), **overrides: object) -> list[Manifest]:
        result = template(values_files, **overrides)
        assert result.returncode == 0, f"helm template failed:\n{result.stderr}"
        return [doc for doc in yaml.safe_load_all(result.stdout) if doc]

    return objects


@pytest.fixture(scope="session")
def notes(run_helm: Callable[..., HelmResult]) -> Callable[..., str]:
    """The NOTES `helm install` prints (a client-side dry run: no cluster is contacted)."""

    def render(values_files: Iterable[Path] = (), **overrides: object) -> str:
        args = ["install", RELEASE, str(CHART), "--namespace", NAMESPACE, "--dry-run=client"]
        result = run_helm(*args, *values_args(values_files, overrides))
        assert result.returncode == 0, f"helm install --dry-run failed:\n{result.stderr}"
        _, found, text = result.stdout.partition("\nNOTES:\n")
        assert found, "helm printed no NOTES"
        return text

    return render
