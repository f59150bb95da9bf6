from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import tes

from tests.integration.live_server import LiveServer, live_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("tesk")) as running:
        yield running


@pytest.fixture
def client(server: LiveServer) -> tes.HTTPClient:
    return tes.HTTPClient(server.url, timeout=10)


@pytest.fixture
def files(server: LiveServer) -> Path:
    return server.files
