"""The HTTP transport itself (spec §0.1-§0.3, wire §1-§3): envelope, routing, versions, methods, query
string, headers. These tests are inherently HTTP-specific, so they use the ``http`` client directly."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from workerhub.testing import ServerHandle

from .support import ms

NEVER = {429, 502, 503, 509}  # ClearML clients retry these for minutes


def send(http: httpx.Client, method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, dict]:
    content = kw.pop("content", None)
    if content is None and body is not None:
        content = json.dumps(body)
    headers = {"Content-Type": "application/json", **kw.pop("headers", {})}
    r = http.request(method, path, content=content, headers=headers, **kw)
    assert r.status_code not in NEVER
    assert r.headers["content-type"].startswith("application/json")
    reply = r.json()
    assert r.status_code == reply["meta"]["result_code"]
    assert isinstance(reply["data"], dict)
    return r.status_code, reply


def ids(http: httpx.Client) -> list[str]:
    return [w["id"] for w in send(http, "POST", "/workers.get_all", {"last_seen": 0})[1]["data"]["workers"]]


# --- envelope ----------------------------------------------------------------------------------------


def test_success_envelope(http: httpx.Client) -> None:
    status, reply = send(http, "POST", "/workers.register", {"worker": "w1"})
    assert status == 200
    meta = reply["meta"]
    assert re.fullmatch(r"[0-9a-f]{32}", meta["id"])
    assert meta["trx"] == meta["id"]
    assert meta["endpoint"] == {
        "name": "workers.register",
        "requested_version": "2.4",
        "actual_version": "2.4",
    }
    assert (meta["result_code"], meta["result_subcode"], meta["result_msg"]) == (200, 0, "OK")
    assert meta["error_stack"] is None
    assert reply["data"] == {}


def test_error_envelope(http: httpx.Client) -> None:
    status, reply = send(http, "POST", "/workers.unregister", {"worker": "w1"})
    assert status == 400
    meta = reply["meta"]
    assert (meta["result_code"], meta["result_subcode"]) == (400, 1004)
    assert meta["result_msg"] == "worker is not registered: worker=w1"
    assert meta["endpoint"]["name"] == "workers.unregister"
    assert meta["error_data"] == {}  # what upstream sends for errors raised by endpoint code (wire §2)
    assert reply["data"] == {}


def test_call_ids_are_unique(http: httpx.Client) -> None:
    seen = {send(http, "POST", "/debug.ping")[1]["meta"]["id"] for _ in range(5)}
    assert len(seen) == 5


@pytest.mark.parametrize("header", ["X-ClearML-Trx", "X-Trains-Trx"])
def test_trx_is_echoed_from_the_header(http: httpx.Client, header: str) -> None:
    _, reply = send(http, "POST", "/workers.get_all", {}, headers={header: "my-trx-1"})
    assert reply["meta"]["trx"] == "my-trx-1"
    assert reply["meta"]["id"] != "my-trx-1"


def test_debug_ping(http: httpx.Client) -> None:
    status, reply = send(http, "GET", "/debug.ping")
    assert status == 200 and reply["meta"]["endpoint"]["name"] == "debug.ping"


# --- routing and versions -----------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["2.4", "2.9", "2.13", "2.20", "2.23", "2.99", "3.0"])
def test_versions_from_2_4_up_are_served_by_the_2_4_endpoint(http: httpx.Client, version: str) -> None:
    status, reply = send(http, "POST", f"/v{version}/workers.get_all", {})
    assert status == 200
    assert reply["meta"]["endpoint"] == {
        "name": "workers.get_all",
        "requested_version": version,
        "actual_version": "2.4",
    }


@pytest.mark.parametrize("version", ["2.1", "2.3", "1.9"])
def test_versions_below_2_4_are_404(http: httpx.Client, version: str) -> None:
    status, reply = send(http, "POST", f"/v{version}/workers.get_all", {})
    assert status == 404
    assert reply["meta"]["result_subcode"] == 0
    assert (
        reply["meta"]["result_msg"]
        == f"Unable to find endpoint for name workers.get_all and version {version}"
    )


@pytest.mark.parametrize("path", ["/workers.nope", "/v2.23/workers.nope", "/tasks.get_all", "/debug.nope/"])
def test_unknown_endpoints_are_404(http: httpx.Client, path: str) -> None:
    status, reply = send(http, "POST", path, {})
    assert (status, reply["meta"]["result_subcode"]) == (404, 0)
    assert reply["meta"]["result_msg"].startswith("Unable to find endpoint for name ")


def test_unknown_endpoint_message_names_it(http: httpx.Client) -> None:
    _, reply = send(http, "POST", "/workers.nope", {})
    assert reply["meta"]["result_msg"] == "Unable to find endpoint for name workers.nope and version 2.4"


@pytest.mark.parametrize(
    "path", ["/workers.register/", "/v2.23/workers.register/", "/v2.23/workers.register"]
)
def test_trailing_slash_and_version_prefix(http: httpx.Client, path: str) -> None:
    assert send(http, "POST", path, {"worker": "w1"})[0] == 200
    assert ids(http) == ["w1"]


def test_unparseable_version_is_400_2(http: httpx.Client) -> None:
    status, reply = send(http, "POST", "/vX/workers.get_all", {})
    assert (status, reply["meta"]["result_subcode"]) == (400, 2)


@pytest.mark.parametrize("path", ["/not-a-call", "/workers.get_all.x", "/a/b/workers.get_all"])
def test_malformed_path_is_400(http: httpx.Client, path: str) -> None:
    status, reply = send(http, "POST", path, {})
    assert (status, reply["meta"]["result_subcode"]) == (400, 0)


# --- methods and bodies ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST", "PUT"])
def test_get_post_and_put_carry_a_json_body(http: httpx.Client, method: str) -> None:
    assert send(http, method, "/workers.register", {"worker": f"w-{method}"})[0] == 200
    body = {"worker": f"w-{method}", "timestamp": ms(), "machine_stats": {"memory_used": 3}}
    assert send(http, method, "/workers.status_report", body)[0] == 200
    _, reply = send(http, method, "/workers.get_all", {"last_seen": 0})
    assert [w["id"] for w in reply["data"]["workers"]] == [f"w-{method}"]


def test_empty_body_is_an_empty_object(http: httpx.Client) -> None:
    status, reply = send(http, "GET", "/workers.get_all")
    assert status == 200 and reply["data"] == {"workers": []}


def test_options_is_200_with_an_empty_body(http: httpx.Client) -> None:
    r = http.request("OPTIONS", "/workers.get_all")
    assert r.status_code == 200 and r.content == b""


def test_json_sent_as_text_plain_is_read(http: httpx.Client) -> None:  # curl -d sends form-urlencoded
    r = http.post("/workers.register", content=b'{"worker": "w1"}', headers={"Content-Type": "text/plain"})
    assert r.status_code == 200
    r = http.post("/workers.register", content=b'{"worker": "w2"}')  # no content type at all
    assert r.status_code == 200
    assert ids(http) == ["w1", "w2"]


@pytest.mark.parametrize("raw", [b"{", b"not json", b'{"worker": "w1",}', b"\xff\xfe"])
def test_bad_json_is_400_0(http: httpx.Client, raw: bytes) -> None:
    status, reply = send(http, "POST", "/workers.register", content=raw)
    assert (status, reply["meta"]["result_subcode"]) == (400, 0)
    assert reply["meta"]["result_msg"]
    assert ids(http) == []


@pytest.mark.parametrize("raw", [b"[1]", b'"w1"', b"42"])
def test_a_body_that_is_not_an_object_is_400_12(http: httpx.Client, raw: bytes) -> None:
    status, reply = send(http, "POST", "/workers.register", content=raw)
    assert (status, reply["meta"]["result_subcode"]) == (400, 12)
    assert "body" in reply["meta"]["result_msg"]


@pytest.mark.parametrize("raw", [b"null", b"[]", b'""', b"false"])
def test_a_falsy_json_body_counts_as_no_body(http: httpx.Client, raw: bytes) -> None:
    # upstream takes `json_body or form or {}`: register then misses `worker`, get_all works
    status, reply = send(http, "POST", "/workers.register", content=raw)
    assert (status, reply["meta"]["result_subcode"]) == (400, 12)
    assert "worker" in reply["meta"]["result_msg"]
    assert send(http, "POST", "/workers.get_all?last_seen=0", content=raw)[0] == 200
    assert send(http, "POST", "/workers.register?worker=w1", content=raw)[0] == 200
    assert ids(http) == ["w1"]


def test_content_encoding_is_refused_with_415(http: httpx.Client) -> None:
    status, _ = send(
        http, "POST", "/workers.register", {"worker": "w1"}, headers={"Content-Encoding": "gzip"}
    )
    assert status == 415
    assert ids(http) == []


def test_oversized_body_is_413(http: httpx.Client) -> None:
    body = {"worker": "w1", "padding": "x" * (5 * 1024 * 1024)}
    status, _ = send(http, "POST", "/workers.register", body)
    assert status == 413
    assert ids(http) == []


# --- query string -------------------------------------------------------------------------------------


def test_query_string_is_merged_into_the_body_and_converted(http: httpx.Client) -> None:
    # timeout "30" would be cast anyway; "true"/"1.5" show the conversion on a strict (schema) endpoint
    assert send(http, "GET", "/workers.register?worker=w1&timeout=30")[0] == 200
    [w] = send(http, "POST", "/workers.get_all", {"last_seen": 0})[1]["data"]["workers"]
    assert w["register_timeout"] == 30
    send(
        http,
        "POST",
        "/workers.status_report",
        {"worker": "w1", "timestamp": ms(), "machine_stats": {"cpu_usage": [1, 3]}},
    )
    base = ms() // 1000
    status, reply = send(
        http, "POST", f"/workers.get_stats?split_by_variant=true&interval=60&from_date={base - 60}.5",
        {"to_date": base + 60, "items": [{"key": "cpu_usage"}], "interval": "wrong type, overridden"},
    )  # fmt: skip
    assert status == 200
    metrics = reply["data"]["workers"][0]["metrics"]
    assert [m["variant"] for m in metrics] == ["0", "1"]


def test_query_string_overrides_the_body(http: httpx.Client) -> None:
    send(http, "POST", "/workers.register?worker=from-query", {"worker": "from-body"})
    assert ids(http) == ["from-query"]


def test_repeated_keys_and_brackets_make_lists(http: httpx.Client) -> None:
    send(http, "POST", "/workers.register?worker=w1&queues=q1&queues=q2")
    send(http, "POST", "/workers.register?worker=w2&queues[]=q3")
    _, reply = send(http, "POST", "/workers.get_all", {"last_seen": 0})
    assert {w["id"]: w["queues"] for w in reply["data"]["workers"]} == {
        "w1": [{"id": "q1"}, {"id": "q2"}],
        "w2": [{"id": "q3"}],
    }


def test_dotted_keys_build_objects(http: httpx.Client) -> None:
    path = f"/workers.status_report?worker=w1&timestamp={ms()}&machine_stats.memory_used=7"
    assert send(http, "POST", path)[0] == 200
    _, reply = send(http, "POST", "/workers.get_metric_keys", {})
    assert reply["data"]["categories"] == [{"name": "memory", "metric_keys": ["memory_used"]}]


# --- client IP ---------------------------------------------------------------------------------------


def _ip_after(http: httpx.Client, headers: dict[str, str]) -> str:
    send(http, "POST", "/workers.status_report", {"worker": "w1", "timestamp": ms()}, headers=headers)
    [w] = send(http, "POST", "/workers.get_all", {"last_seen": 0})[1]["data"]["workers"]
    return w["ip"]


def test_client_ip_is_the_peer_without_proxy_headers(http: httpx.Client) -> None:
    assert _ip_after(http, {}) == "127.0.0.1"


def test_x_forwarded_for_is_taken_raw(http: httpx.Client) -> None:
    assert _ip_after(http, {"X-Forwarded-For": "10.0.0.1, 10.0.0.2"}) == "10.0.0.1, 10.0.0.2"


def test_x_real_ip_comes_after_x_forwarded_for(http: httpx.Client) -> None:
    assert _ip_after(http, {"X-Real-IP": "10.9.9.9"}) == "10.9.9.9"
    assert _ip_after(http, {"X-Real-IP": "10.9.9.9", "X-Forwarded-For": "10.0.0.1"}) == "10.0.0.1"


def test_register_records_the_ip_too(http: httpx.Client) -> None:
    send(http, "POST", "/workers.register", {"worker": "w1"}, headers={"X-Real-IP": "10.1.1.1"})
    [w] = send(http, "POST", "/workers.get_all", {"last_seen": 0})[1]["data"]["workers"]
    assert w["ip"] == "10.1.1.1"


# --- never a retry-forever status -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "content"),
    [
        ("POST", "/workers.status_report", b'{"worker": "w1", "timestamp": "soon"}'),
        ("GET", "/workers.get_stats", b'{"from_date": 1}'),
        ("PUT", "/workers.get_activity_report", b'{"from_date": 9, "to_date": 1, "interval": 1}'),
        ("POST", "/workers.get_metric_keys", b"{}"),
        ("POST", "/workers.unregister", b"{}"),
        ("POST", "/v2.0/workers.register", b"{}"),
        ("POST", "/workers.register", b"\x00\x01"),
        (
            "POST",
            "/workers.status_report",
            b'{"worker": "w", "timestamp": 1, "machine_stats": {"cpu_usage": "x"}}',
        ),
        ("POST", "/workers.status_report", b'{"worker": "w", "timestamp": 1e400}'),
        (
            "POST",
            "/workers.get_stats",
            b'{"from_date": 0, "to_date": 1e400, "interval": 1, "items": [{"key": "a"}]}',
        ),
    ],
)
def test_request_errors_never_use_retry_statuses(
    http: httpx.Client, method: str, path: str, content: bytes
) -> None:
    status, _ = send(http, method, path, content=content)
    assert 400 <= status < 500


# --- keep-alive: the ClearML clients reuse connections --------------------------------------------------


@pytest.mark.parametrize(
    ("path", "kwargs", "status"),
    [
        ("/workers.nope", {"json": {"padding": "x" * 10}}, 404),
        ("/workers.nope", {"json": {"padding": "x" * 50_000}}, 404),
        ("/vX/workers.register", {"json": {"worker": "w1"}}, 400),
        ("/workers.register", {"json": {"worker": "w1"}, "headers": {"Content-Encoding": "gzip"}}, 415),
        ("/workers.register", {"content": b"x" * (5 << 20)}, 413),
        ("/workers.register", {"content": b"{not json"}, 400),
    ],
)
def test_an_error_reply_leaves_the_connection_usable(
    hub_server: ServerHandle, path: str, kwargs: dict, status: int
) -> None:
    with httpx.Client(base_url=hub_server.url, timeout=3, verify=False) as client:
        assert client.post(path, **kwargs).status_code == status
        # the next request goes out on the same connection (or a new one if the server closed it)
        assert client.post("/workers.register", json={"worker": "w2"}).status_code == 200


def test_a_kept_alive_connection_survives_a_clock_jump(hub_server: ServerHandle) -> None:
    with httpx.Client(base_url=hub_server.url, timeout=3, verify=False) as client:
        for _ in range(10):
            assert client.post("/workers.register", json={"worker": "w1"}).status_code == 200
            hub_server.advance_clock(120)
            assert client.post("/debug.ping", json={}).status_code == 200


def test_options_with_a_body_leaves_the_connection_usable(hub_server: ServerHandle) -> None:
    with httpx.Client(base_url=hub_server.url, timeout=3, verify=False) as client:
        for size in (10, 1000, 100_000):
            assert client.request("OPTIONS", "/workers.get_all", content=b"x" * size).status_code == 200
            assert client.post("/debug.ping", json={}).status_code == 200
