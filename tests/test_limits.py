"""Limits a hostile or unlucky client runs into (issue #9 items 2, 3, 5): each is a setting, refused with a
ClearML error naming it, and leaves the server serving everyone else. Small limits keep the tests short;
every wait is bounded by a socket timeout, none asserts on time."""

from __future__ import annotations

import base64
import socket
import struct
import time
from pathlib import Path
from typing import Any

import httpx
import msgpack
import pytest

from workerhub.client import StreamClient
from workerhub.config import Settings
from workerhub.server import _hypercorn_config
from workerhub.stream import FrameDecoder, encode_frame, encode_request
from workerhub.testing import ServerHandle, running_server

from .support import BASE_S, JsonApi, RawConn, code, ms, report

MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z


def _call(
    server: ServerHandle, name: str, body: Any, headers: dict[str, str] | None = None
) -> tuple[int, int, str]:
    r = httpx.post(f"{server.url}/{name}", json=body, headers=headers, timeout=10)
    meta = r.json()["meta"]
    assert r.status_code == meta["result_code"]
    return r.status_code, meta["result_subcode"], meta["result_msg"]


def _ids(server: ServerHandle, headers: dict[str, str] | None = None) -> list[str]:
    r = httpx.post(f"{server.url}/workers.get_all", json={"last_seen": 0}, headers=headers, timeout=10)
    return [w["id"] for w in r.json()["data"]["workers"]]


# --- #9 item 2: bounded memory per company ------------------------------------------------------------------


def test_a_list_longer_than_max_variants_is_refused_and_one_at_it_is_kept() -> None:
    with running_server(max_variants=4) as server:
        at_limit = {"worker": "w1", "timestamp": ms(), "machine_stats": {"gpu_usage": [1, 2, 3, 4]}}
        assert _call(server, "workers.status_report", at_limit)[:2] == (200, 0)
        wide = {"worker": "w2", "timestamp": ms(), "machine_stats": {"gpu_usage": [1, 2, 3, 4, 5]}}
        status, sub, msg = _call(server, "workers.status_report", wide)
        assert (status, sub) == (400, 12)
        assert "machine_stats.gpu_usage" in msg and "max_variants" in msg and "5 entries" in msg
        assert _ids(server) == ["w1"]


def test_max_workers_caps_registrations_and_a_refused_worker_leaves_nothing() -> None:
    with running_server(max_workers=2) as server:
        for w in ("w1", "w2"):
            assert _call(server, "workers.register", {"worker": w})[0] == 200
        for name, body in (
            ("workers.register", {"worker": "w3"}),
            (
                "workers.status_report",
                {"worker": "w3", "timestamp": ms(), "machine_stats": {"cpu_usage": [1.0]}},
            ),
        ):
            status, sub, msg = _call(server, name, body)
            assert (status, sub) == (400, 1002) and "maximum of 2 workers" in msg
        assert (
            _call(server, "workers.register", {"worker": "w1", "timeout": 60})[0] == 200
        )  # re-registering is fine
        assert _ids(server) == ["w1", "w2"]
        keys = httpx.post(f"{server.url}/workers.get_metric_keys", json={"worker_ids": ["w3"]}).json()["meta"]
        assert keys["result_subcode"] == 1005  # no stats were kept for w3


CREDENTIALS = tuple(f"k{c}:{'s' * 32}:{c}:u" for c in ("acme", "globex"))


def _basic(company: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"k{company}:{'s' * 32}".encode()).decode()}


def test_max_histories_caps_worker_ids_per_company() -> None:
    with running_server(max_histories=3, auth=CREDENTIALS) as server:
        acme, globex = _basic("acme"), _basic("globex")
        for w in ("w1", "w2"):
            assert _call(server, "workers.status_report", {"worker": w, "timestamp": ms()}, acme)[0] == 200
        assert _call(server, "workers.register", {"worker": "w3"}, acme)[0] == 200
        for name, body in (
            ("workers.status_report", {"worker": "w4", "timestamp": ms()}),
            ("workers.register", {"worker": "w4"}),
        ):
            status, sub, msg = _call(server, name, body, acme)
            assert (status, sub) == (400, 1002), msg
            assert "max_histories" in msg and "worker=w4" in msg
        assert _ids(server, acme) == ["w1", "w2", "w3"]
        # known ids keep reporting and re-registering; after unregistering, the history still counts
        assert _call(server, "workers.status_report", {"worker": "w1", "timestamp": ms(10)}, acme)[0] == 200
        assert _call(server, "workers.unregister", {"worker": "w3"}, acme)[0] == 200
        assert _call(server, "workers.register", {"worker": "w4"}, acme)[:2] == (400, 1002)
        assert _call(server, "workers.register", {"worker": "w3"}, acme)[0] == 200
        # the cap is per company
        for w in ("w1", "w2", "w3"):
            assert _call(server, "workers.register", {"worker": w}, globex)[0] == 200


def test_above_max_memory_known_workers_report_but_new_workers_and_series_are_refused(tmp_path: Path) -> None:
    cpu = {"cpu_usage": [10.0, 20.0], "memory_used": 512.0}
    with running_server(data_dir=str(tmp_path)) as server:
        assert (
            _call(server, "workers.status_report", {"worker": "w1", "timestamp": ms(), "machine_stats": cpu})[
                0
            ]
            == 200
        )
    # the process is far above 1 MiB resident: the limit holds from the first request
    with running_server(data_dir=str(tmp_path), max_memory_mb=1, max_api_version="2.4") as server:
        known = {"worker": "w1", "timestamp": ms(10), "machine_stats": cpu}
        assert _call(server, "workers.status_report", known)[:2] == (200, 0)
        status, sub, msg = _call(server, "workers.status_report", {"worker": "w2", "timestamp": ms(10)})
        assert (status, sub) == (400, 1002) and "max_memory_mb=1" in msg
        assert _call(server, "workers.register", {"worker": "w3"})[:2] == (400, 1002)
        one_more_core = {"worker": "w1", "timestamp": ms(20), "machine_stats": {"cpu_usage": [1.0, 2.0, 3.0]}}
        status, sub, msg = _call(server, "workers.status_report", one_more_core)
        assert (status, sub) == (400, 12) and "machine_stats.cpu_usage" in msg and "max_memory_mb" in msg
        assert _ids(server) == ["w1"]
        body = {
            "from_date": BASE_S - 60,
            "to_date": BASE_S + 60,
            "interval": 60,
            "items": [{"key": "cpu_usage"}],
        }
        r = httpx.post(f"{server.url}/workers.get_stats", json={**body, "split_by_variant": True}).json()
        variants = [m["variant"] for m in r["data"]["workers"][0]["metrics"]]
        assert sorted(variants) == ["0", "1"]


# --- #9 item 5: numbers out of range ------------------------------------------------------------------------


def test_reports_at_the_year_9999_edge_are_answered_exactly(api: JsonApi) -> None:
    report(api, "edge", MAX_MS, {"cpu_usage": [7.0]})
    report(api, "epoch", 0, {"cpu_usage": [3.0]})
    last = MAX_MS / 1000
    body = {"items": [{"key": "cpu_usage", "aggregation": "max"}]}
    near = api.ok("workers.get_stats", {**body, "from_date": last - 10, "to_date": last, "interval": 1})
    assert near["workers"] == [
        {
            "worker": "edge",
            "metrics": [
                {
                    "metric": "cpu_usage",
                    "dates": [MAX_MS // 1000 * 1000],
                    "stats": [{"aggregation": "max", "values": [7.0]}],
                }
            ],
        }
    ]
    # one bucket wider than every accepted date: both reports fall in the bucket that starts at 0
    whole = api.ok(
        "workers.get_stats", {**body, "from_date": 0, "to_date": last, "interval": MAX_MS // 1000 + 1}
    )
    assert {w["worker"]: w["metrics"][0]["dates"] for w in whole["workers"]} == {"edge": [0], "epoch": [0]}
    # an interval larger than the range: one bucket, aligned to the interval
    small = api.ok("workers.get_stats", {**body, "from_date": 0, "to_date": 1, "interval": 10**9})
    assert [(w["worker"], w["metrics"][0]["dates"]) for w in small["workers"]] == [("epoch", [0])]
    # from > to and from == to are 400/16 (the range is empty), as before
    for lo, hi in ((last, last), (last, last - 1)):
        reply = api.call("workers.get_stats", {**body, "from_date": lo, "to_date": hi, "interval": 60})
        assert reply.code == (400, 16)


@pytest.mark.parametrize("digits", [10, 5000])
def test_a_version_with_many_digits_is_a_400(hub_server: ServerHandle, digits: int) -> None:
    path = f"v{'9' * digits}.1/debug.ping"
    r = httpx.post(f"{hub_server.url}/{path}", json={}, timeout=10)
    assert (r.status_code, r.json()["meta"]["result_subcode"]) == (400, 2)
    assert hub_server.stream_url is not None
    with StreamClient(hub_server.stream_url, timeout=10) as client:
        assert client.call(path, {}).meta["result_code"] == 400


# --- #9 item 3: the stream cannot be starved or flooded -----------------------------------------------------


def _first_reply(conn: RawConn) -> dict[str, Any]:
    return conn.replies(1)[0]


def test_stream_connections_beyond_the_cap_get_503_and_are_closed() -> None:
    with running_server(msgpack_port=0, stream_max_connections=2) as server:
        assert server.stream_url is not None
        a, b = RawConn(server.stream_url), RawConn(server.stream_url)
        for conn in (a, b):
            conn.send(encode_request(1, "debug.ping"))
            assert code(_first_reply(conn)) == (200, 0)
        c = RawConn(server.stream_url)
        refused = _first_reply(c)
        assert code(refused) == (503, 0) and "stream_max_connections" in refused["meta"]["result_msg"]
        assert c.closed()
        a.send(encode_request(2, "debug.ping"))  # the open ones are unaffected
        assert code(_first_reply(a)) == (200, 0)
        a.sock.close()
        # a's slot frees once the server has seen it close: a later connection gets it
        for _attempt in range(200):
            d = RawConn(server.stream_url)
            d.send(encode_request(3, "debug.ping"))
            reply = _first_reply(d)
            d.sock.close()
            if code(reply) == (200, 0):
                break
        else:
            pytest.fail("the slot of a closed connection was never reused")
        b.sock.close()
        c.sock.close()


def test_an_idle_stream_connection_is_closed() -> None:
    with running_server(msgpack_port=0, stream_idle_timeout=0.2) as server:
        assert server.stream_url is not None
        conn = RawConn(server.stream_url)
        conn.send(encode_request(1, "debug.ping"))
        assert code(_first_reply(conn)) == (200, 0)
        assert conn.closed()  # no reply, no error: closed like an idle HTTP keep-alive connection
        conn.sock.close()


def test_clock_jumps_of_testing_mode_do_not_close_stream_connections() -> None:
    with running_server(msgpack_port=0, stream_idle_timeout=30, stream_frame_timeout=30) as server:
        assert server.stream_url is not None
        conn = RawConn(server.stream_url)
        conn.send(encode_request(1, "debug.ping") + encode_request(2, "debug.ping")[:3])  # idle, then partial
        assert code(_first_reply(conn)) == (200, 0)
        server.advance_clock(3600)
        conn.send(encode_request(2, "debug.ping")[3:])
        assert code(_first_reply(conn)) == (200, 0)
        conn.sock.close()


def test_a_frame_not_completed_in_time_closes_its_connection_even_when_trickled() -> None:
    with running_server(msgpack_port=0, stream_frame_timeout=0.3, stream_idle_timeout=60) as server:
        assert server.stream_url is not None
        conn = RawConn(server.stream_url)
        frame = encode_request(1, "workers.register", {"worker": "w1", "pad": "x" * 10_000})
        conn.sock.settimeout(0.05)
        sent = 0
        try:  # one byte per 50 ms: every read is quick, the frame as a whole is not
            while sent < len(frame):
                conn.send(frame[sent : sent + 1])
                sent += 1
                try:
                    data = conn.sock.recv(65536)
                except TimeoutError:
                    continue
                conn.decoder.feed(data)
                break
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert sent < len(frame)
        conn.sock.settimeout(10)
        reply = _first_reply(conn)
        assert code(reply) == (400, 0) and "stream_frame_timeout" in reply["meta"]["result_msg"]
        assert conn.closed()
        conn.sock.close()
        assert _ids(server) == []


def test_bytes_buffered_across_stream_connections_are_bounded() -> None:
    partial = struct.pack(">I", 500_000) + b"\x00" * 60_000  # a 500 kB frame, 60 kB of it sent
    with running_server(
        msgpack_port=0, stream_buffer_bytes=150_000, stream_frame_timeout=2, max_body_bytes=1_000_000
    ) as server:
        assert server.stream_url is not None
        conns = [RawConn(server.stream_url) for _ in range(5)]
        for conn in conns:
            conn.send(partial)
        # 5 x 60 kB cannot fit in 150 kB: at most two connections hold theirs (until their frame times out)
        codes = [code(_first_reply(conn)) for conn in conns]
        assert codes.count((503, 0)) >= 3 and set(codes) <= {(503, 0), (400, 0)}, codes
        for conn in conns:
            assert conn.closed()
            conn.sock.close()
        # the budget is given back: a whole 140 kB frame goes through now
        conn = RawConn(server.stream_url)
        request = msgpack.packb({"id": 9, "call": "debug.ping", "body": {"pad": "x" * 140_000}})
        conn.send(encode_frame(request))
        assert code(_first_reply(conn)) == (200, 0)
        conn.sock.close()


def test_hypercorn_limits_come_from_settings() -> None:
    config = _hypercorn_config(Settings(http_keep_alive_timeout=7.5, listen_backlog=64))
    assert (config.keep_alive_timeout, config.backlog, config.h11_max_incomplete_size) == (7.5, 64, 16 * 1024)
    assert config.read_timeout is None  # would cut clients waiting for a long answer


def test_a_stream_refusal_does_not_stop_http() -> None:
    with running_server(msgpack_port=0, stream_max_connections=1) as server:
        assert server.stream_url is not None
        held = RawConn(server.stream_url)
        held.send(encode_request(1, "debug.ping"))
        assert code(_first_reply(held)) == (200, 0)
        extra = RawConn(server.stream_url)
        assert code(_first_reply(extra)) == (503, 0)
        assert _call(server, "debug.ping", {})[0] == 200
        held.sock.close()
        extra.sock.close()


def test_a_client_that_does_not_read_its_replies_is_closed() -> None:
    with running_server(msgpack_port=0, stream_idle_timeout=0.5) as server:
        assert server.stream_url is not None
        host, port = server.stream_url.removeprefix("msgpack://").rsplit(":", 1)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect((host, int(port)))
        sock.settimeout(0.5)
        batch = encode_request(1, "debug.ping") * 1000
        sent = 0
        try:  # until the server stops reading: its replies fill both socket buffers
            for _ in range(1000):
                sock.sendall(batch)
                sent += 1000
        except (TimeoutError, ConnectionResetError, BrokenPipeError):
            pass
        assert sent < 1_000_000, "the server never stopped reading"
        time.sleep(2)  # not reading: the server's send stays blocked past stream_idle_timeout
        sock.settimeout(10)
        decoder = FrameDecoder(limit=1 << 20)
        try:
            while data := sock.recv(65536):
                decoder.feed(data)
        except ConnectionResetError:
            pass  # closed with requests still unread: the kernel resets instead of a FIN
        # the server gave up on us before it had answered what we sent (else it would answer all of it)
        assert len(list(decoder.frames())) < sent
        sock.close()
        assert _call(server, "debug.ping", {})[0] == 200
