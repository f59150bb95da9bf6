"""Servers the filer tests talk to, and a filer configured for fast retries."""

from __future__ import annotations

from pathlib import Path

import pytest

from tesk.config import FilerConfig, RetryConfig
from tesk.filer import Filer
from tests.fixtures.servers import (  # noqa: F401 - fixtures
    closed_port,
    ftp_server,
    http_server,
    moto_server,
    s3_bucket,
)

FAST_RETRY = RetryConfig(attempts=3, initial_backoff_s=0.01, max_backoff_s=0.05, timeout_s=5)


@pytest.fixture
def file_root(tmp_path: Path) -> Path:
    root = tmp_path / "storage"
    root.mkdir()
    return root


@pytest.fixture
def config(file_root: Path) -> FilerConfig:
    return FilerConfig(file_roots=[file_root], retry=FAST_RETRY, chunk_bytes=64 * 1024)


@pytest.fixture
def filer(config: FilerConfig) -> Filer:
    return Filer(config)


@pytest.fixture
def volume(tmp_path: Path) -> Path:
    root = tmp_path / "volume"
    root.mkdir()
    return root
