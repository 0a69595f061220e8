"""Fixtures of the API-version tests: a server at its default ``max_api_version`` (2.34).

The session server answers unversioned calls as 2.4 and serves no version above it (tests/conftest.py), so
these tests get their own server: a test module imports ``head_server`` and overrides ``hub_server`` with
:func:`cleared`, so the ``api`` fixture (HTTP+JSON, HTTP+msgpack, the stream) talks to it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from workerhub.testing import ServerHandle, running_server

__all__ = ["ServerHandle", "cleared", "head_server"]


@pytest.fixture(scope="module")
def head_server() -> Iterator[ServerHandle]:
    with running_server(msgpack_port=0) as handle:
        yield handle


def cleared(server: ServerHandle) -> ServerHandle:
    """The 2.34 server, cleared before the test."""
    server.reset()
    return server
