"""The msgpack stream's own rules (framing, ids, pipelining, limits), over raw sockets to a real server.

Endpoint behaviour is tested once for every transport through the ``api`` fixture; this file covers what
only the stream has.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest

from workerhub.client import StreamClient, StreamError
from workerhub.stream import FrameDecoder, encode_frame, encode_request
from workerhub.testing import ServerHandle, running_server

from .support import JsonApi, RawConn, code

REPORT = {"worker": "w1", "timestamp": 1_700_000_000_000, "machine_stats": {"cpu_usage": [10, 20]}}


@pytest.fixture
def raw(hub_server: ServerHandle) -> Iterator[RawConn]:
    assert hub_server.stream_url is not None
    conn = RawConn(hub_server.stream_url)
    yield conn
    conn.sock.close()


def test_pipelined_requests_answered_in_order_with_ids_echoed(raw: RawConn) -> None:
    frames = [encode_request(1, "workers.register", {"worker": "w1"})]
    frames += [
        encode_request(f"r{i}", "workers.status_report", {**REPORT, "timestamp": 1_700_000_000_000 + i})
        for i in range(200)
    ]
    frames.append(encode_request(b"\x00bin", "workers.get_all", {"last_seen": 0}))
    raw.send(b"".join(frames))  # one write: every request is in flight before the first reply
    replies = raw.replies(202)
    assert [r["id"] for r in replies] == [1, *(f"r{i}" for i in range(200)), b"\x00bin"]
    assert all(code(r) == (200, 0) for r in replies)
    # Requests on one connection run in order: get_all sees every report before it.
    (worker,) = replies[-1]["data"]["workers"]
    assert worker["id"] == "w1"
    assert worker["last_report_time"] is not None


def test_reply_envelope_matches_http(raw: RawConn, api: JsonApi) -> None:
    bad = {"worker": "w1"}  # no timestamp
    raw.send(encode_request(7, "workers.status_report", bad, trx="trx-1"))
    (reply,) = raw.replies(1)
    via_api = api.call("workers.status_report", bad)
    assert reply["id"] == 7 and reply["data"] == {}
    assert code(reply) == via_api.code == (400, 12)
    assert reply["meta"]["result_msg"] == via_api.meta["result_msg"]
    assert reply["meta"]["trx"] == "trx-1"
    assert reply["meta"]["endpoint"] == {
        "name": "workers.status_report",
        "requested_version": "2.4",
        "actual_version": "2.4",
    }


def test_versions_and_unknown_calls_resolve_like_paths(raw: RawConn) -> None:
    raw.send(
        encode_request(1, "v2.23/workers.get_all")
        + encode_request(2, "v2.1/workers.get_all")
        + encode_request(3, "workers.nope")
        + encode_request(4, "not a call")
        + encode_request(5, "vX/workers.get_all")
    )
    r = raw.replies(5)
    assert code(r[0]) == (200, 0) and r[0]["meta"]["endpoint"]["requested_version"] == "2.23"
    assert code(r[1]) == (404, 0)
    assert code(r[2]) == (404, 0) and "workers.nope" in r[2]["meta"]["result_msg"]
    assert code(r[3]) == (400, 0)
    assert code(r[4]) == (400, 2)
    assert [x["id"] for x in r] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    "payload, reply_id",
    [
        (b"\xc1", None),  # never valid msgpack
        (b"", None),  # empty frame
        (msgpack.packb([1, "workers.get_all"]), None),  # not a map
        (msgpack.packb({"id": 9, "body": {}}), 9),  # no call
        (msgpack.packb({"id": 9, "call": 12}), 9),  # call not a string
        (msgpack.packb({1: "int keys"}), None),  # map keys must be strings
    ],
)
def test_garbage_frames_get_400_and_the_connection_survives(
    raw: RawConn, payload: bytes, reply_id: Any
) -> None:
    raw.send(encode_frame(payload) + encode_request(2, "debug.ping"))
    bad, good = raw.replies(2)
    assert code(bad) == (400, 0) and bad["id"] == reply_id and bad["data"] == {}
    assert code(good) == (200, 0) and good["id"] == 2


def test_a_bad_body_is_a_validation_error(raw: RawConn) -> None:
    raw.send(
        encode_request(1, "workers.register", [1, 2]) + encode_request(2, "workers.register", {"worker": 5})
    )
    r = raw.replies(2)
    assert code(r[0]) == (400, 12) and code(r[1]) == (400, 12)
    assert "worker" in r[1]["meta"]["result_msg"]


def test_oversized_frame_is_refused_and_closes_the_connection(raw: RawConn, hub_server: ServerHandle) -> None:
    limit = hub_server.hub.settings.max_body_bytes
    raw.send(encode_request(1, "debug.ping") + struct.pack(">I", limit + 1) + b"\x80" * 100)
    ok, refused = raw.replies(2)
    assert code(ok) == (200, 0)
    assert code(refused) == (413, 0) and refused["id"] is None
    assert str(limit) in refused["meta"]["result_msg"]
    assert raw.closed()


def test_a_frame_at_the_limit_is_read(hub_server: ServerHandle) -> None:
    with running_server(msgpack_port=0, max_body_bytes=1000) as small:
        assert small.stream_url is not None
        conn = RawConn(small.stream_url)
        body = {"worker": "w1", "pad": "x" * 500}
        request = msgpack.packb({"id": 1, "call": "workers.register", "body": body})
        body["pad"] += "x" * (1000 - len(request))
        request = msgpack.packb({"id": 1, "call": "workers.register", "body": body})
        assert len(request) == 1000
        conn.send(encode_frame(request))
        assert code(conn.replies(1)[0]) == (200, 0)
        conn.send(encode_frame(request + b"\x00"))
        assert code(conn.replies(1)[0]) == (413, 0)
        assert conn.closed()
        conn.sock.close()


def test_frames_split_across_writes(raw: RawConn) -> None:
    data = encode_request(1, "workers.register", {"worker": "w1"}) + encode_request(2, "debug.ping")
    for i in range(len(data)):
        raw.send(data[i : i + 1])
    assert [r["id"] for r in raw.replies(2)] == [1, 2]


def test_connection_reuse_and_independent_connections(hub_server: ServerHandle) -> None:
    assert hub_server.stream_url is not None
    with StreamClient(hub_server.stream_url) as a, StreamClient(hub_server.stream_url) as b:
        for i in range(50):
            assert a.call("workers.status_report", {**REPORT, "worker": "a", "timestamp": i + 1}).ok
            assert b.call("workers.status_report", {**REPORT, "worker": "b", "timestamp": i + 1}).ok
        replies = a.call_many((("debug.ping", None) for _ in range(1000)), window=1000)
        assert len(replies) == 1000 and all(r.data == {"msg": "workerhub"} for r in replies)
        ids = [w["id"] for w in b.call("workers.get_all", {"last_seen": 0}).data["workers"]]
        assert ids == ["a", "b"]


def test_client_raises_when_the_server_breaks_off(hub_server: ServerHandle) -> None:
    assert hub_server.stream_url is not None
    limit = hub_server.hub.settings.max_body_bytes
    with StreamClient(hub_server.stream_url) as client:
        with pytest.raises(StreamError) as info:
            client.call("workers.register", {"worker": "w1", "pad": "x" * limit})
        assert info.value.reply is not None and info.value.reply.code == (413, 0)
        assert client.call("debug.ping").ok  # reconnects


def test_stream_is_off_unless_a_port_is_given() -> None:
    with running_server() as plain:
        assert plain.stream_url is None


def test_shutdown_with_open_stream_connections() -> None:
    with running_server(msgpack_port=0) as srv:
        assert srv.stream_url is not None
        client = StreamClient(srv.stream_url)
        assert client.call("debug.ping").ok
    # the server stopped with the connection open; the client sees it closed
    with pytest.raises(StreamError):
        client.call("debug.ping")
    client.close()


def test_frame_decoder_limit_and_partial_frames() -> None:
    d = FrameDecoder(limit=4)
    d.feed(encode_frame(b"abcd")[:5])
    assert d.next_frame() is None and d.buffered == 5
    d.feed(b"bcd" + encode_frame(b""))
    assert list(d.frames()) == [b"abcd", b""]
    assert d.buffered == 0
    d.feed(struct.pack(">I", 5))
    with pytest.raises(Exception) as info:
        d.next_frame()
    assert getattr(info.value, "code", None) == 413


def test_credentials_mode_needs_a_token_per_request() -> None:
    """The stream authenticates like HTTP: no token 401/20, a bad one 401/30, a token from auth.login works."""
    import base64

    import httpx

    with running_server(msgpack_port=0, auth=("k:" + "s" * 32 + ":acme:bob",)) as server:
        assert server.stream_url is not None
        basic = base64.b64encode(("k:" + "s" * 32).encode()).decode()
        login = httpx.get(f"{server.url}/auth.login", headers={"Authorization": f"Basic {basic}"})
        token = login.json()["data"]["token"]
        with StreamClient(server.stream_url, timeout=10) as anonymous:
            assert anonymous.call("workers.get_all", {}).meta["result_subcode"] == 20
            assert anonymous.call("debug.ping", {}).status == 200
        with StreamClient(server.stream_url, timeout=10, token="not-a-token") as forged:
            assert forged.call("workers.get_all", {}).meta["result_subcode"] == 30
        with StreamClient(server.stream_url, timeout=10, token=token) as client:
            assert client.call("workers.register", {"worker": "w1"}).status == 200
            workers = client.call("workers.get_all", {}).data["workers"]
            assert [(w["id"], w["company"]["id"], w["user"]["id"]) for w in workers] == [("w1", "acme", "bob")]
