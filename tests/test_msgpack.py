"""msgpack over HTTP (a workerhub extension): content negotiation, identical results, hardened decoding.

Every endpoint test already runs in both codecs through the ``api`` fixture; this module covers what is
specific to msgpack: which reply type a request gets, that JSON and msgpack answer the same data, and that
garbage, hostile or oversized bodies get a 400/413 envelope, never a 500 or a hung connection.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workerhub.testing import ServerHandle, running_server

from .support import JsonApi, MsgpackApi

MSGPACK = "application/vnd.msgpack"
LEGACY = ["application/x-msgpack", "application/msgpack"]
T0 = 1_700_000_000_000
RANGE = {"from_date": T0 // 1000 - 60, "to_date": T0 // 1000 + 600, "interval": 60}
ENDPOINTS = [
    "workers.register",
    "workers.unregister",
    "workers.status_report",
    "workers.get_all",
    "workers.get_metric_keys",
    "workers.get_stats",
    "workers.get_activity_report",
]


def post(http: httpx.Client, name: str, content: bytes, content_type: str, **headers: str) -> httpx.Response:
    return http.post(f"/{name}", content=content, headers={"Content-Type": content_type, **headers})


def decoded(r: httpx.Response) -> dict[str, Any]:
    media = r.headers["content-type"].split(";")[0]
    reply = msgpack.unpackb(r.content) if media == MSGPACK else r.json()
    assert r.status_code == reply["meta"]["result_code"] and isinstance(reply["data"], dict)
    return reply


# --- negotiation ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("media", [MSGPACK, *LEGACY, "application/vnd.msgpack; charset=binary"])
def test_msgpack_request_gets_a_msgpack_reply(http: httpx.Client, media: str) -> None:
    r = post(http, "workers.register", msgpack.packb({"worker": "w1", "tags": ["a"]}), media)
    assert r.status_code == 200 and r.headers["content-type"] == MSGPACK
    assert msgpack.unpackb(r.content)["data"] == {}
    workers = decoded(post(http, "workers.get_all", msgpack.packb({}), media))["data"]["workers"]
    assert [(w["id"], w["tags"]) for w in workers] == [("w1", ["a"])]


@pytest.mark.parametrize(
    ("content_type", "accept", "expected"),
    [
        ("application/json", MSGPACK, MSGPACK),
        ("application/json", f"application/json;q=0.5, {MSGPACK}", MSGPACK),
        ("application/json", "application/x-msgpack", MSGPACK),
        (MSGPACK, "application/json", "application/json"),
        (MSGPACK, "*/*", MSGPACK),
        ("application/json", "*/*", "application/json"),
        ("application/json", None, "application/json"),
    ],
)
def test_accept_decides_else_the_reply_mirrors_the_request(
    http: httpx.Client, content_type: str, accept: str | None, expected: str
) -> None:
    body = msgpack.packb({}) if content_type == MSGPACK else b"{}"
    headers = {"Accept": accept} if accept else {}
    r = post(http, "workers.get_all", body, content_type, **headers)
    assert r.status_code == 200 and r.headers["content-type"] == expected


def test_errors_come_in_the_reply_codec(http: httpx.Client) -> None:
    r = post(http, "workers.register", msgpack.packb({"worker": 5}), MSGPACK)
    assert r.headers["content-type"] == MSGPACK
    meta = decoded(r)["meta"]
    assert (meta["result_code"], meta["result_subcode"]) == (400, 12) and "worker" in meta["result_msg"]
    r = post(http, "nope.nope", b"", MSGPACK, Accept=MSGPACK)
    assert r.status_code == 404 and decoded(r)["meta"]["endpoint"]["name"] == "nope.nope"


def test_get_with_a_msgpack_body_and_an_empty_body(http: httpx.Client) -> None:
    http.post("/workers.register", json={"worker": "w1"})
    r = http.request(
        "GET", "/workers.get_all", content=msgpack.packb({"last_seen": 0}), headers={"Content-Type": MSGPACK}
    )
    assert len(decoded(r)["data"]["workers"]) == 1
    r = http.request("GET", "/workers.get_all", content=b"", headers={"Content-Type": MSGPACK})
    assert r.status_code == 200 and r.headers["content-type"] == MSGPACK


def test_a_whitespace_byte_is_a_msgpack_integer_not_an_empty_body(http: httpx.Client) -> None:
    r = post(http, "workers.get_all", b" ", MSGPACK)  # the integer 32: not an object
    assert decoded(r)["meta"]["result_subcode"] == 12


# --- identical results ------------------------------------------------------------------------------------


def _scenario(api: JsonApi) -> list[Any]:
    out: list[Any] = [api.ok("workers.register", {"worker": "w1", "timeout": 600, "tags": ["x"]})]
    for i, (cpu, task) in enumerate([([10.5, 20], "t1"), ([30, 40.25], None), ([50, 60], "t1")]):
        body = {
            "worker": "w1",
            "timestamp": T0 + i * 65_000,
            "task": task,
            "machine_stats": {"cpu_usage": cpu, "memory_used": 1024.5 * (i + 1), "gpu_usage": [float(i + 1)]},
            "method": "get",
            "is_daemon": True,
        }
        out.append(api.ok("workers.status_report", body))
    out.append(
        api.ok("workers.status_report", {"worker": "w2", "timestamp": T0 + 1000, "machine_stats": None})
    )
    out.append(api.ok("workers.get_metric_keys", {"worker_ids": ["w1"]}))
    for split in (False, True):
        items = [
            {"key": k, "aggregation": a} for k in ("cpu_usage", "memory_used") for a in ("avg", "min", "max")
        ]
        out.append(api.ok("workers.get_stats", {**RANGE, "items": items, "split_by_variant": split}))
    out.append(api.ok("workers.get_activity_report", RANGE))
    workers = api.ok("workers.get_all", {"last_seen": 0})["workers"]
    for w in workers:  # drop what depends on the wall clock
        w.get("task", {}).pop("running_time", None)
    out.append([{k: v for k, v in w.items() if not k.endswith("_time")} for w in workers])
    out.append(api.ok("workers.unregister", {"worker": "w1", "queues": []}))
    return out


def test_json_and_msgpack_give_identical_results(hub_server: ServerHandle, http: httpx.Client) -> None:
    results = {}
    for api in (JsonApi(http), MsgpackApi(http)):
        hub_server.reset()
        results[api.codec] = _scenario(api)
    assert results["json"] == results["msgpack"]
    # And the values came through as numbers of the right kind.
    stats = results["msgpack"][6]["workers"][0]["metrics"]
    assert all(isinstance(d, int) for m in stats for d in m["dates"])
    assert all(isinstance(v, float) for m in stats for s in m["stats"] for v in s["values"])


def test_same_state_read_in_both_codecs(hub_server: ServerHandle, http: httpx.Client) -> None:
    _scenario(MsgpackApi(http))
    JsonApi(http).ok("workers.register", {"worker": "w3"})
    for name, body in [
        ("workers.get_all", {"last_seen": 0}),
        ("workers.get_metric_keys", {}),
        ("workers.get_stats", {**RANGE, "items": [{"key": "cpu_usage"}], "split_by_variant": True}),
        ("workers.get_activity_report", RANGE),
    ]:
        assert JsonApi(http).ok(name, body) == MsgpackApi(http).ok(name, body)


# --- hostile bodies ---------------------------------------------------------------------------------------


def _deep(depth: int) -> bytes:
    return b"\x81\xa1a" * depth + b"\xc0"  # {"a": {"a": ... nil}}


HOSTILE = {
    "truncated": msgpack.packb({"worker": "w1"})[:-2],
    "extra-data": msgpack.packb({"worker": "w1"}) + b"\x01",
    "reserved-byte": b"\xc1",
    "int-map-key": msgpack.packb({1: "x"}),
    "nil-map-key": b"\x81\xc0\x01",
    "bad-utf8": b"\x81\xa6worker\xa2\xff\xfe",
    "ext-type": msgpack.packb({"worker": msgpack.ExtType(5, b"abc")}),
    "timestamp-ext": msgpack.packb({"timestamp": msgpack.Timestamp(1, 0)}),
    "huge-array-claim": b"\xdd\xff\xff\xff\xff",
    "huge-map-claim": b"\xdf\xff\xff\xff\xff",
    "huge-str-claim": b"\xdb\xff\xff\xff\xff",
    "huge-bin-claim": b"\xc6\xff\xff\xff\xff",
    "deep-nesting": _deep(100_000),
}


@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
@pytest.mark.parametrize("name", ["workers.status_report", "workers.get_stats"])
def test_garbage_msgpack_is_400_with_an_envelope(http: httpx.Client, body: bytes, name: str) -> None:
    for media in (MSGPACK, *LEGACY):
        r = post(http, name, body, media)
        meta = decoded(r)["meta"]
        assert (r.status_code, meta["result_subcode"]) == (400, 0), meta
        assert "msgpack" in meta["result_msg"]
    assert http.post("/debug.ping", json={}).status_code == 200  # the connection is still usable


WRONG_VALUES = {
    "top-level-list": [1, 2],
    "top-level-int": 7,
    "top-level-nil": None,
    "bytes-worker": {"worker": b"w1", "timestamp": T0},
    "nan-timestamp": {"worker": "w1", "timestamp": float("nan")},
    "inf-timestamp": {"worker": "w1", "timestamp": float("inf")},
    "nan-stat": {"worker": "w1", "timestamp": T0, "machine_stats": {"cpu_usage": [float("nan")]}},
    "inf-stat": {"worker": "w1", "timestamp": T0, "machine_stats": {"memory_used": float("-inf")}},
    "bytes-stat": {"worker": "w1", "timestamp": T0, "machine_stats": {"memory_used": b"1"}},
    "bytes-key": {b"worker": "w1", "timestamp": T0},
}


@pytest.mark.parametrize("body", WRONG_VALUES.values(), ids=WRONG_VALUES.keys())
def test_values_json_cannot_carry_are_validated(http: httpx.Client, body: Any) -> None:
    r = post(http, "workers.status_report", msgpack.packb(body, use_bin_type=True), MSGPACK)
    assert (r.status_code, decoded(r)["meta"]["result_subcode"]) == (400, 12)


@pytest.mark.parametrize("value", [2**64 - 1, 2**63, -(2**63), 2**53 + 1])
def test_extreme_integers_are_refused_or_stored_never_500(http: httpx.Client, value: int) -> None:
    for body in (
        {"worker": "w1", "timestamp": value, "machine_stats": {"cpu_usage": [1]}},
        {"worker": "w1", "timestamp": T0, "machine_stats": {"cpu_usage": [value], "memory_used": value}},
        {"worker": "w1", "timeout": value},
    ):
        name = "workers.register" if "timeout" in body else "workers.status_report"
        r = post(http, name, msgpack.packb(body), MSGPACK)
        assert r.status_code in (200, 400), decoded(r)["meta"]
    for name, body in [
        ("workers.get_stats", {**RANGE, "to_date": value, "items": [{"key": "cpu_usage"}]}),
        ("workers.get_stats", {**RANGE, "interval": value, "items": [{"key": "cpu_usage"}]}),
        ("workers.get_activity_report", {**RANGE, "from_date": value}),
        ("workers.get_all", {"last_seen": value}),
    ]:
        r = post(http, name, msgpack.packb(body), MSGPACK)
        assert r.status_code in (200, 400), decoded(r)["meta"]


def test_activity_report_size_is_bounded(api: JsonApi) -> None:
    """Its series are zero-filled over the range: a few bytes must not ask for billions of buckets."""
    stats = {"machine_stats": {"cpu_usage": [5]}, "task": "t"}  # reports without stats are not activity
    api.ok("workers.status_report", {"worker": "w1", "timestamp": 0, **stats})
    api.ok("workers.status_report", {"worker": "w1", "timestamp": T0, **stats})
    reply = api.call("workers.get_activity_report", {"from_date": 0, "to_date": T0 // 1000, "interval": 1})
    assert reply.code == (400, 16) and "interval" in reply.meta["result_msg"]
    week = {"from_date": T0 // 1000 - 7 * 86400, "to_date": T0 // 1000 + 100, "interval": 10}
    api.ok("workers.status_report", {"worker": "w1", "timestamp": T0 + 20_000, **stats})
    assert api.ok("workers.get_activity_report", week)["total"] == {
        "dates": [T0, T0 + 10_000],
        "counts": [1, 0],
    }


# --- size limits ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_server() -> Iterator[ServerHandle]:
    with running_server(max_body_bytes=2048) as handle:
        yield handle


@pytest.mark.parametrize("media", [MSGPACK, "application/json"])
def test_oversized_bodies_are_413_and_the_client_can_go_on(small_server: ServerHandle, media: str) -> None:
    big = {"worker": "w1", "timestamp": T0, "machine_stats": {"cpu_usage": [1.5] * 1000}}
    content = msgpack.packb(big) if media == MSGPACK else httpx.Request("POST", "/", json=big).content
    assert len(content) > 2048
    with httpx.Client(base_url=small_server.url, timeout=5) as http:
        for _ in range(3):
            r = post(http, "workers.status_report", content, media)
            assert r.status_code == 413 and r.headers["content-type"] == media
            assert decoded(r)["meta"]["result_code"] == 413
            assert (
                post(http, "workers.get_all", b"\x80" if media == MSGPACK else b"{}", media).status_code
                == 200
            )

        def chunks() -> Iterator[bytes]:
            for i in range(0, len(content), 512):
                yield content[i : i + 512]

        r = http.post("/workers.status_report", content=chunks(), headers={"Content-Type": media})
        assert r.status_code == 413  # no Content-Length: refused while streaming


# --- fuzz -------------------------------------------------------------------------------------------------

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
    | st.binary(max_size=8)
    | st.sampled_from(["w1", "cpu_usage", "avg", "max", "category", "gpu_usage"])
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
_fields = st.sampled_from(
    [
        "worker",
        "timestamp",
        "timeout",
        "queues",
        "tags",
        "task",
        "queue",
        "machine_stats",
        "last_seen",
        "worker_ids",
        "from_date",
        "to_date",
        "interval",
        "items",
        "split_by_variant",
        "cpu_usage",
        "key",
    ]
)
_bodies = st.dictionaries(_fields, _values, max_size=6) | _values


_STATS = {"cpu_usage": [1.5, 2], "memory_used": 1024, "gpu_usage": [3]}
VALID = {
    "workers.register": {"worker": "w1", "timeout": 60, "queues": ["q"], "tags": ["t"]},
    "workers.unregister": {"worker": "w1", "queues": []},
    "workers.status_report": {"worker": "w1", "timestamp": T0, "task": "t", "machine_stats": _STATS},
    "workers.get_all": {"last_seen": 0},
    "workers.get_metric_keys": {"worker_ids": ["w1"]},
    "workers.get_stats": {
        **RANGE,
        "items": [{"key": "cpu_usage", "category": "max"}],
        "split_by_variant": True,
    },
    "workers.get_activity_report": RANGE,
}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(ENDPOINTS), body=_bodies)
def test_fuzzed_msgpack_bodies_never_500(http: httpx.Client, name: str, body: Any) -> None:
    r = post(http, name, msgpack.packb(body, use_bin_type=True), MSGPACK)
    assert r.status_code in (200, 400), decoded(r)["meta"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_valid_bodies_with_fuzzed_fields_never_500(http: httpx.Client, data: st.DataObject) -> None:
    """Reach past the first check: a valid body with one or two fields (or nested stats) replaced."""
    name = data.draw(st.sampled_from(ENDPOINTS))
    body = dict(VALID[name])
    for field in data.draw(st.lists(st.sampled_from([*body, "machine_stats"]), min_size=1, max_size=2)):
        body[field] = data.draw(_values)
    if name == "workers.status_report" and data.draw(st.booleans()):
        body["machine_stats"] = {**_STATS, data.draw(st.sampled_from(sorted(_STATS))): data.draw(_values)}
    if name == "workers.get_stats" and data.draw(st.booleans()):
        body["items"] = [
            data.draw(st.dictionaries(st.sampled_from(["key", "aggregation", "category"]), _values))
        ]
    r = post(http, name, msgpack.packb(body, use_bin_type=True), MSGPACK)
    assert r.status_code in (200, 400), decoded(r)["meta"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(ENDPOINTS), content=st.binary(max_size=64))
def test_random_bytes_never_500(http: httpx.Client, name: str, content: bytes) -> None:
    for media in (MSGPACK, "application/json"):
        r = post(http, name, content, media)
        assert r.status_code in (200, 400), decoded(r)["meta"]
