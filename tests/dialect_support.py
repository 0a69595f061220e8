"""Fixtures of the API-version tests: a server at its default ``max_api_version`` (2.34).

The session server answers unversioned calls as 2.4 and serves no version above it (tests/conftest.py), so
these tests get their own server; importing ``hub_server`` into a test module makes the ``api`` fixture
(HTTP+JSON, HTTP+msgpack, the stream) talk to it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from workerhub.testing import ServerHandle, running_server


@pytest.fixture(scope="module")
def head_server() -> Iterator[ServerHandle]:
    with running_server(msgpack_port=0) as handle:
        yield handle


@pytest.fixture
def hub_server(head_server: ServerHandle) -> ServerHandle:
    """Overrides conftest's: the 2.34 server, cleared before the test."""
    head_server.reset()
    return head_server
