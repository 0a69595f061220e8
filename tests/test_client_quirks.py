"""What the real clients send and expect beyond the 2.4 schema (wire §1, §2, §6), in both codecs.

The real SDK and agent run in tests/test_clearml_clients.py; here each quirk is pinned on its own.
"""

from __future__ import annotations

import re

import httpx
import pytest

from .support import JsonApi

T0 = 1_700_000_000_000
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?$")  # naive UTC, as upstream's utcnow().isoformat()


def test_get_with_a_json_body(http: httpx.Client) -> None:
    r = http.request("GET", "/workers.register", json={"worker": "w1", "method": "get"})
    assert r.status_code == 200
    r = http.request("GET", "/workers.get_all", json={"last_seen": 0})
    assert [w["id"] for w in r.json()["data"]["workers"]] == ["w1"]


@pytest.mark.parametrize("method", ["GET", "POST", "PUT"])
def test_every_method_reads_the_body(api: JsonApi, method: str) -> None:
    assert api.call("workers.register", {"worker": f"w-{method}"}, method=method).ok
    assert api.call("workers.unregister", {"worker": f"w-{method}"}, method=method).ok


def test_agent_status_report_fields(api: JsonApi) -> None:
    """The agent's report: tags, is_daemon, floats where the schema says integer, cpu_usage as one-element list."""
    body = {
        "worker": "host:0",
        "timestamp": T0,
        "tags": ["cpu-only"],
        "is_daemon": True,
        "queue": "q1",
        "queues": ["q1", "q2"],
        "task": "t1",
        "machine_stats": {
            "cpu_usage": [12.345],
            "memory_used": 1024.5,
            "disk_free_home": 55.5,
            "gpu_fraction": 1,
        },
    }
    api.ok("workers.status_report", body)
    (w,) = api.ok("workers.get_all", {"last_seen": 0})["workers"]
    assert w["tags"] == ["cpu-only"] and w["task"]["id"] == "t1"
    assert w["queue"] == {"id": "q1"} and w["queues"] == [{"id": "q1"}, {"id": "q2"}]
    # The final report from the agent's stop() carries machine_stats null.
    api.ok("workers.status_report", {**body, "timestamp": T0 + 1000, "machine_stats": None})
    stats = api.ok(
        "workers.get_stats",
        {
            "from_date": T0 // 1000 - 60,
            "to_date": T0 // 1000 + 60,
            "interval": 60,
            "items": [{"key": "memory_used"}],
        },
    )
    assert stats["workers"][0]["metrics"][0]["stats"][0]["values"] == [1024.5]
    # unregister with the agent's extra `queues`.
    assert api.ok("workers.unregister", {"worker": "host:0", "queues": ["q1"]}) == {}


def test_sdk_bodies_with_method_and_category(api: JsonApi) -> None:
    api.ok("workers.register", {"worker": "w1", "timeout": 600, "method": "get"})
    api.ok("workers.status_report", {"worker": "w1", "timestamp": T0, "machine_stats": {"cpu_usage": [1, 9]}})
    body = {
        "from_date": T0 // 1000 - 60,
        "to_date": T0 // 1000 + 60,
        "interval": 60,
        "items": [{"key": "cpu_usage", "category": "max"}],
        "split_by_variant": False,
        "method": "get",
    }
    metric = api.ok("workers.get_stats", body)["workers"][0]["metrics"][0]
    assert metric["stats"] == [{"aggregation": "max", "values": [9.0]}]


def test_reply_typing_the_sdk_enforces(api: JsonApi) -> None:
    api.ok("workers.register", {"worker": "w1"})
    for i in range(3):
        body = {
            "worker": "w1",
            "timestamp": T0 + i * 60_000,
            "task": "t1",
            "machine_stats": {"cpu_usage": [5]},
        }
        api.ok("workers.status_report", body)
    (w,) = api.ok("workers.get_all")["workers"]
    for field in ("register_time", "last_activity_time", "last_report_time"):
        assert ISO.match(w[field]), w[field]
    assert isinstance(w["task"]["running_time"], int)
    rng = {"from_date": T0 // 1000 - 60, "to_date": T0 // 1000 + 240, "interval": 60}
    metric = api.ok("workers.get_stats", {**rng, "items": [{"key": "cpu_usage"}]})["workers"][0]["metrics"][0]
    assert all(type(d) is int for d in metric["dates"])
    assert all(type(v) is float for v in metric["stats"][0]["values"])
    activity = api.ok("workers.get_activity_report", rng)
    for series in activity.values():
        assert series["dates"] and all(type(x) is int for x in series["dates"] + series["counts"])


@pytest.mark.parametrize("prefix", ["X-ClearML", "X-Trains"])
def test_client_headers_and_trx_echo(api: JsonApi, prefix: str) -> None:
    headers = {
        f"{prefix}-Worker": "host",
        f"{prefix}-Client": "clearml-server-0.1.0, clearml-2.1.12",
        f"{prefix}-Agent": "api-3.0.3",
        f"{prefix}-Trx": "trx-42",
    }
    reply = api.call("workers.get_all", {}, headers=headers)
    assert reply.ok and reply.meta["trx"] == "trx-42"
    plain = api.call("workers.get_all", {})
    assert plain.meta["trx"] == plain.meta["id"]


@pytest.mark.parametrize(
    ("path", "requested"),
    [("workers.get_all", "2.4"), ("v2.23/workers.get_all", "2.23"), ("v2.9/workers.get_all/", "2.9")],
)
def test_requested_version_from_the_path(api: JsonApi, path: str, requested: str) -> None:
    endpoint = api.call(path, {}).meta["endpoint"]
    assert endpoint == {"name": "workers.get_all", "requested_version": requested, "actual_version": "2.4"}


def test_below_the_minimum_version_is_404(api: JsonApi) -> None:
    reply = api.call("v2.1/workers.get_all", {})
    assert reply.code == (404, 0) and "workers.get_all" in reply.meta["result_msg"]


def test_floats_where_the_schema_says_integer(api: JsonApi) -> None:
    api.ok("workers.register", {"worker": "w1", "timeout": 60.0})
    api.ok(
        "workers.status_report",
        {"worker": "w1", "timestamp": float(T0), "machine_stats": {"memory_used": 1.5}},
    )
    (w,) = api.ok("workers.get_all", {"last_seen": 3600.0})["workers"]
    assert w["register_timeout"] == 60 and type(w["register_timeout"]) is int
    rng = {"from_date": T0 / 1000 - 60.5, "to_date": T0 / 1000 + 60.5, "interval": 60.0}
    metric = api.ok("workers.get_stats", {**rng, "items": [{"key": "memory_used"}]})["workers"][0]["metrics"][
        0
    ]
    assert metric["dates"] == [1_699_999_980_000] and metric["stats"][0]["values"] == [1.5]
