"""Shared fixtures. Every endpoint test talks to a real server on a free port through ``api``.

``api.call(name, body)`` sends one call and returns a :class:`Reply`; the fixture is the one place where
transports and codecs are parametrized, so endpoint tests are written once and run over each of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import msgpack
import pytest

from workerhub.client import Reply, StreamClient
from workerhub.testing import ServerHandle, WorkerhubServer


class JsonApi:
    """Calls over HTTP with JSON bodies, as ClearML clients send them."""

    codec = "json"

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def call(self, name: str, body: Any = None, *, method: str = "POST", headers: dict | None = None) -> Reply:
        r = self.client.request(method, f"/{name}", json={} if body is None else body, headers=headers)
        assert r.headers["content-type"].startswith("application/json")
        return self._reply(r.status_code, r.json())

    @staticmethod
    def _reply(status: int, reply: dict[str, Any]) -> Reply:
        assert status == reply["meta"]["result_code"], "HTTP status must equal result_code"
        assert isinstance(reply["data"], dict), "data is always an object"
        return Reply(status, reply["meta"], reply["data"])

    def ok(self, name: str, body: Any = None) -> dict[str, Any]:
        """Call and assert success; returns ``data``."""
        reply = self.call(name, body)
        assert reply.ok, reply.meta
        return reply.data


def client_for(handle: ServerHandle) -> httpx.Client:
    """An HTTP client for ``handle`` (keep-alive, as the ClearML clients use)."""
    # verify=False: plain http on loopback, and it skips loading the CA bundle (~0.1 s per client)
    return httpx.Client(base_url=handle.url, timeout=10, verify=False)


class MsgpackApi(JsonApi):
    """The same calls with msgpack request bodies and replies (a workerhub extension to the wire)."""

    codec = "msgpack"
    MEDIA = "application/vnd.msgpack"

    def call(self, name: str, body: Any = None, *, method: str = "POST", headers: dict | None = None) -> Reply:
        content = msgpack.packb({} if body is None else body, use_bin_type=True)
        headers = {"Content-Type": self.MEDIA, "Accept": self.MEDIA, **(headers or {})}
        r = self.client.request(method, f"/{name}", content=content, headers=headers)
        assert r.headers["content-type"] == self.MEDIA, r.headers["content-type"]
        return self._reply(r.status_code, msgpack.unpackb(r.content, raw=False))


APIS = {"json": JsonApi, "msgpack": MsgpackApi}


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
