from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from workerhub.testing import ServerHandle, running_server


@pytest.fixture(scope="session")
def server() -> Iterator[ServerHandle]:
    with running_server() as handle:
        yield handle


@pytest.fixture
def hub_server(server: ServerHandle) -> ServerHandle:
    """The session server, with all state cleared before the test."""
    server.reset()
    return server


@pytest.fixture
def http(hub_server: ServerHandle) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=hub_server.url, timeout=10) as client:
        yield client
