"""workerhub.client against a real server: both transports, both HTTP codecs, errors as replies."""

from __future__ import annotations

from typing import Literal

import pytest
import trio

from workerhub.client import CallError, HttpClient, StreamClient, StreamError, open_stream_client
from workerhub.testing import ServerHandle

REPORT = {"worker": "w1", "timestamp": 1_700_000_000_000, "machine_stats": {"cpu_usage": [10, 20]}}


@pytest.mark.parametrize("codec", ["json", "msgpack"])
def test_http_client_calls_and_errors(hub_server: ServerHandle, codec: Literal["json", "msgpack"]) -> None:
    with HttpClient(hub_server.url, codec=codec) as client:
        assert client.call("workers.register", {"worker": "w1"}).unwrap() == {}
        assert client.call("workers.status_report", REPORT).ok
        (worker,) = client.call("workers.get_all", {"last_seen": 0}).unwrap()["workers"]
        assert worker["id"] == "w1"
        bad = client.call("workers.status_report", {"worker": "w1"})
        assert bad.status == 400 and bad.code == (400, 12) and bad.data == {}
        with pytest.raises(CallError) as info:
            bad.unwrap()
        assert (info.value.code, info.value.subcode) == (400, 12)
        assert client.call("workers.nope").code == (404, 0)


def test_http_client_version_prefix_and_reconnect(hub_server: ServerHandle) -> None:
    with HttpClient(hub_server.url, version="2.23") as client:
        reply = client.call("workers.get_all")
        assert reply.ok and reply.meta["endpoint"]["requested_version"] == "2.23"
        client.close()  # the next call opens a new connection
        assert client.call("debug.ping").data == {"msg": "workerhub"}
    with HttpClient(hub_server.url, version="2.1") as old:
        assert old.call("workers.get_all").code == (404, 0)


def test_http_client_rejects_other_urls() -> None:
    with pytest.raises(ValueError):
        HttpClient("msgpack://127.0.0.1:1")
    with pytest.raises(ValueError):
        StreamClient("http://127.0.0.1:1")


def test_stream_and_http_see_the_same_hub(hub_server: ServerHandle) -> None:
    assert hub_server.stream_url is not None
    with StreamClient(hub_server.stream_url) as stream, HttpClient(hub_server.url) as http:
        replies = stream.call_many(
            ("workers.status_report", {**REPORT, "worker": f"w{i}", "timestamp": REPORT["timestamp"] + i})
            for i in range(300)
        )
        assert all(r.ok for r in replies)
        ids = {w["id"] for w in http.call("workers.get_all", {"last_seen": 0}).unwrap()["workers"]}
        assert ids == {f"w{i}" for i in range(300)}


def test_call_many_small_window_keeps_order(hub_server: ServerHandle) -> None:
    assert hub_server.stream_url is not None
    with StreamClient(hub_server.stream_url) as client:
        calls = [
            ("workers.register", {"worker": f"w{i}"}) if i % 2 else ("workers.nope", {}) for i in range(41)
        ]
        replies = client.call_many(calls, window=3)
        assert [r.code for r in replies] == [(200, 0) if i % 2 else (404, 0) for i in range(41)]
        assert client.call_many([]) == []


async def test_trio_client_shares_one_connection_between_tasks(hub_server: ServerHandle) -> None:
    assert hub_server.stream_url is not None
    async with open_stream_client(hub_server.stream_url, window=8) as client:
        replies = await client.call_many(
            ("workers.status_report", {**REPORT, "worker": f"w{i % 5}", "timestamp": REPORT["timestamp"] + i})
            for i in range(100)
        )
        assert len(replies) == 100 and all(r.ok for r in replies)
        results: dict[int, int] = {}

        async def ask(i: int) -> None:
            reply = await client.call("workers.get_all", {"last_seen": 0})
            results[i] = len(reply.unwrap()["workers"])

        async with trio.open_nursery() as nursery:
            for i in range(20):
                nursery.start_soon(ask, i)
        assert results == dict.fromkeys(range(20), 5)
        assert (await client.call("workers.nope")).code == (404, 0)


async def test_trio_client_fails_calls_when_the_server_breaks_off(hub_server: ServerHandle) -> None:
    assert hub_server.stream_url is not None
    limit = hub_server.hub.settings.max_body_bytes
    async with open_stream_client(hub_server.stream_url) as client:
        with pytest.raises(StreamError):
            await client.call("workers.register", {"worker": "w1", "pad": "x" * limit})
        with pytest.raises(StreamError):
            await client.call("debug.ping")
