"""Shared fixtures. Every endpoint test talks to a real server on a free port through ``api``.

``api.call(name, body)`` sends one call and returns a :class:`Reply`; the fixture is the one place where
transports and codecs are parametrized, so endpoint tests are written once and run over each of them.
The API classes themselves live in ``tests/support.py``, with the other helpers tests share.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from workerhub.client import StreamClient
from workerhub.testing import ServerHandle, WorkerhubServer

from .support import APIS, JsonApi, StreamApi, client_for


@pytest.fixture(scope="session")
def workerhub_settings() -> dict[str, Any]:
    """The session server also serves the msgpack stream, so endpoint tests run over it too."""
    # max_api_version 2.4: the endpoint tests written for the seed use unversioned paths (= that version);
    # the tests of later versions name theirs (tests/test_dialect_*.py)
    return {"msgpack_port": 0, "max_api_version": "2.4"}


@pytest.fixture(scope="session")
def server(workerhub_server: WorkerhubServer) -> WorkerhubServer:
    """The session server: the workerhub plugin's (dogfooding; ``--workerhub-url`` runs against another)."""
    return workerhub_server


@pytest.fixture
def hub_server(workerhub: WorkerhubServer) -> WorkerhubServer:
    """The session server, with all state cleared before the test (the plugin's ``workerhub`` fixture)."""
    return workerhub


@pytest.fixture
def http(hub_server: ServerHandle) -> Iterator[httpx.Client]:
    with client_for(hub_server) as client:
        yield client


@pytest.fixture(params=[*APIS, "stream"])
def api(request: pytest.FixtureRequest, hub_server: ServerHandle) -> Iterator[JsonApi | StreamApi]:
    """An API client per transport and codec: HTTP with JSON, HTTP with msgpack, the msgpack stream."""
    if request.param == "stream":
        stream_url = getattr(hub_server, "stream_url", None)
        if stream_url is None:
            pytest.skip("this server does not serve the msgpack stream")
        with StreamClient(stream_url, timeout=10) as client:
            yield StreamApi(client)
    else:
        yield APIS[request.param](request.getfixturevalue("http"))
