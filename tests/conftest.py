"""Shared fixtures. Every endpoint test talks to a real server on a free port through ``api``.

``api.call(name, body)`` sends one call and returns a :class:`Reply`; the fixture is the one place where
transports and codecs are parametrized, so endpoint tests are written once and run over each of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from workerhub.client import StreamClient
from workerhub.testing import ServerHandle, running_server


@dataclass
class Reply:
    status: int
    meta: dict[str, Any]
    data: dict[str, Any]

    @property
    def code(self) -> tuple[int, int]:
        return self.meta["result_code"], self.meta["result_subcode"]

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.code == (200, 0)


class JsonApi:
    """Calls over HTTP with JSON bodies, as ClearML clients send them."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def call(self, name: str, body: Any = None, *, method: str = "POST", headers: dict | None = None) -> Reply:
        r = self.client.request(method, f"/{name}", json={} if body is None else body, headers=headers)
        reply = r.json()
        assert r.status_code == reply["meta"]["result_code"], "HTTP status must equal result_code"
        assert isinstance(reply["data"], dict), "data is always an object"
        return Reply(r.status_code, reply["meta"], reply["data"])

    def ok(self, name: str, body: Any = None) -> dict[str, Any]:
        """Call and assert success; returns ``data``."""
        reply = self.call(name, body)
        assert reply.ok, reply.meta
        return reply.data


class StreamApi:
    """Calls over the native msgpack stream (one persistent connection per test), same interface as JsonApi."""

    def __init__(self, client: StreamClient) -> None:
        self.client = client

    def call(self, name: str, body: Any = None, *, method: str = "POST", headers: dict | None = None) -> Reply:
        if method != "POST" or headers:
            pytest.skip("HTTP methods and headers have no stream equivalent")
        r = self.client.call(name, body)
        assert isinstance(r.data, dict), "data is always an object"
        return Reply(r.status, r.meta, r.data)

    def ok(self, name: str, body: Any = None) -> dict[str, Any]:
        """Call and assert success; returns ``data``."""
        reply = self.call(name, body)
        assert reply.ok, reply.meta
        return reply.data


@pytest.fixture(scope="session")
def server() -> Iterator[ServerHandle]:
    with running_server(msgpack_port=0) as handle:
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


@pytest.fixture(params=["http", "stream"])
def api(request: pytest.FixtureRequest, hub_server: ServerHandle) -> Iterator[JsonApi | StreamApi]:
    if request.param == "stream":
        assert hub_server.stream_url is not None
        with StreamClient(hub_server.stream_url, timeout=10) as client:
            yield StreamApi(client)
    else:
        yield JsonApi(request.getfixturevalue("http"))
