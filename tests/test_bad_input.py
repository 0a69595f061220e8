"""Malformed requests: each gets its spec code (§0.3, §0.4), a message naming the field, and leaves the
state exactly as it was (checked with get_all, get_stats, get_metric_keys and get_activity_report)."""

from __future__ import annotations

from typing import Any

import pytest

from workerhub.stats.aggregate import MAX_BUCKETS

from .support import BASE_S, JsonApi, ms, report

V400_12 = (400, 12)


def _setup(api: JsonApi) -> None:
    api.ok("workers.register", {"worker": "w1", "timeout": 900, "queues": ["q1", "q2"]})
    report(api, "w1", ms(0), {"cpu_usage": [10, 20], "memory_used": 64}, task="t1", queue="q1")
    report(api, "w1", ms(60), {"cpu_usage": [30, 40], "memory_used": 32}, task="t1", queue="q1")
    report(api, "w2", ms(30), {"gpu_usage": [5]})
    report(api, "w2", ms(120), {"gpu_usage": [7]})


def _snapshot(api: JsonApi) -> dict[str, Any]:
    listed = api.ok("workers.get_all", {"last_seen": 0})["workers"]
    for w in listed:
        w.get("task", {}).pop("running_time", None)  # grows with the real clock between snapshots
    items = [
        {"key": k, "aggregation": a}
        for k in ("cpu_usage", "memory_used", "gpu_usage")
        for a in ("min", "max", "avg")
    ]
    span = {"from_date": 0, "to_date": BASE_S + 10 * 86400, "interval": 60}
    return {
        "all": listed,
        "pooled": api.ok("workers.get_stats", {**span, "items": items})["workers"],
        "split": api.ok("workers.get_stats", {**span, "items": items, "split_by_variant": True})["workers"],
        "keys": api.ok("workers.get_metric_keys", {})["categories"],
        "activity": api.ok("workers.get_activity_report", {**span, "from_date": BASE_S - 3600}),
    }


CASES: list[tuple[str, Any, tuple[int, int], str]] = [
    # register
    ("workers.register", {}, V400_12, "worker"),
    ("workers.register", {"worker": None}, V400_12, "worker"),
    ("workers.register", {"worker": 5}, V400_12, "worker"),
    ("workers.register", {"worker": ["w1"]}, V400_12, "worker"),
    ("workers.register", {"worker": "w1", "timeout": "abc"}, V400_12, "timeout"),
    ("workers.register", {"worker": "w1", "timeout": [60]}, V400_12, "timeout"),
    ("workers.register", {"worker": "w1", "timeout": {"s": 60}}, V400_12, "timeout"),
    ("workers.register", {"worker": "w1", "timeout": 1e300}, V400_12, "timeout"),
    ("workers.register", {"worker": "w1", "queues": "q1"}, V400_12, "queues"),
    ("workers.register", {"worker": "w1", "queues": [1]}, V400_12, "queues"),
    ("workers.register", {"worker": "w1", "timeout": 0}, (400, 1002), "timeout"),
    ("workers.register", {"worker": "w1", "timeout": None}, (400, 1002), "timeout"),
    ("workers.register", {"worker": "w1", "timeout": -5}, (400, 1002), "timeout"),
    # unregister
    ("workers.unregister", {}, V400_12, "worker"),
    ("workers.unregister", {"worker": 1}, V400_12, "worker"),
    ("workers.unregister", {"worker": "w9"}, (400, 1004), "worker=w9"),
    # status_report (for a registered and for an unknown worker: neither may change anything)
    ("workers.status_report", {"timestamp": ms()}, V400_12, "worker"),
    ("workers.status_report", {"worker": "w1"}, V400_12, "timestamp"),
    ("workers.status_report", {"worker": "w9"}, V400_12, "timestamp"),
    ("workers.status_report", {"worker": "w1", "timestamp": None}, V400_12, "timestamp"),
    ("workers.status_report", {"worker": "w1", "timestamp": "soon"}, V400_12, "timestamp"),
    ("workers.status_report", {"worker": "w1", "timestamp": [1]}, V400_12, "timestamp"),
    ("workers.status_report", {"worker": "w1", "timestamp": 2**63}, V400_12, "timestamp"),
    ("workers.status_report", {"worker": "w1", "timestamp": 1e300}, V400_12, "timestamp"),
    ("workers.status_report", {"worker": "w1", "timestamp": ms(), "task": 5}, V400_12, "task"),
    ("workers.status_report", {"worker": "w1", "timestamp": ms(), "queue": ["q1"]}, V400_12, "queue"),
    ("workers.status_report", {"worker": "w1", "timestamp": ms(), "queues": "q1"}, V400_12, "queues"),
    (
        "workers.status_report",
        {"worker": "w1", "timestamp": ms(), "machine_stats": "x"},
        V400_12,
        "machine_stats",
    ),
    (
        "workers.status_report",
        {"worker": "w1", "timestamp": ms(), "machine_stats": [1]},
        V400_12,
        "machine_stats",
    ),
    (
        "workers.status_report",
        {"worker": "w1", "timestamp": ms(5), "machine_stats": {"memory_used": 5, "cpu_usage": "90"}},
        V400_12,
        "machine_stats.cpu_usage",
    ),
    (
        "workers.status_report",
        {"worker": "w9", "timestamp": ms(5), "machine_stats": {"cpu_usage": [1, "a"]}},
        V400_12,
        "machine_stats.cpu_usage",
    ),
    (
        "workers.status_report",
        {"worker": "w1", "timestamp": ms(5), "machine_stats": {"cpu_usage": 50}},
        V400_12,
        "machine_stats.cpu_usage",
    ),
    (
        "workers.status_report",
        {"worker": "w1", "timestamp": ms(5), "machine_stats": {"cpu_usage": [[1]]}},
        V400_12,
        "machine_stats.cpu_usage",
    ),
    (
        "workers.status_report",
        {"worker": "w1", "timestamp": ms(5), "machine_stats": {"cpu_usage": [1], "memory_used": "64"}},
        V400_12,
        "machine_stats.memory_used",
    ),
    (
        "workers.status_report",
        {"worker": "w1", "timestamp": ms(5), "machine_stats": {"memory_used": [64]}},
        V400_12,
        "machine_stats.memory_used",
    ),
    (
        "workers.status_report",
        {"worker": "w1", "timestamp": ms(5), "machine_stats": {"network_rx": {"v": 1}}},
        V400_12,
        "machine_stats.network_rx",
    ),
    (
        "workers.status_report",
        {"worker": "w1", "timestamp": ms(5), "machine_stats": {"memory_used": 1e300}},
        V400_12,
        "machine_stats.memory_used",
    ),
    (
        "workers.status_report",
        {"worker": "w1", "timestamp": ms(5), "machine_stats": {"cpu_usage": [1, -1e39]}},
        V400_12,
        "machine_stats.cpu_usage",
    ),
    # out of range (#9 item 5): timestamps 0 .. year 9999 in ms, lists up to max_variants entries
    ("workers.status_report", {"worker": "w1", "timestamp": -1}, V400_12, "timestamp"),
    ("workers.status_report", {"worker": "w9", "timestamp": 2**62}, V400_12, "timestamp"),
    ("workers.status_report", {"worker": "w1", "timestamp": 2**63 - 1}, V400_12, "timestamp"),
    ("workers.status_report", {"worker": "w1", "timestamp": 253_402_300_800_000}, V400_12, "timestamp"),
    (
        "workers.status_report",
        {"worker": "w1", "timestamp": ms(5), "machine_stats": {"memory_used": 1, "cpu_usage": [1.0] * 1025}},
        V400_12,
        "machine_stats.cpu_usage",
    ),
    (
        "workers.status_report",
        {"worker": "w9", "timestamp": ms(5), "machine_stats": {"gpu_memory_used": [1.0] * 100_000}},
        V400_12,
        "machine_stats.gpu_memory_used",
    ),
    (
        "workers.get_stats",
        {"from_date": 0, "to_date": 2**62, "interval": 60, "items": [{"key": "a"}]},
        V400_12,
        "to_date",
    ),
    (
        "workers.get_stats",
        {"from_date": 253_402_300_800, "to_date": 253_402_300_900, "interval": 60, "items": [{"key": "a"}]},
        V400_12,
        "from_date",
    ),
    *[
        (
            "workers.get_stats",
            {"from_date": 0, "to_date": 10, "interval": i, "items": [{"key": "a"}]},
            V400_12,
            "interval",
        )
        for i in (0, -60)
    ],
    (
        "workers.get_stats",
        {"from_date": 0, "to_date": 10, "interval": 253_402_300_801, "items": [{"key": "a"}]},
        V400_12,
        "interval",
    ),
    ("workers.get_activity_report", {"from_date": -1, "to_date": 10, "interval": 60}, V400_12, "from_date"),
    ("workers.get_activity_report", {"from_date": 0, "to_date": 2**53, "interval": 60}, V400_12, "to_date"),
    # get_all
    ("workers.get_all", {"last_seen": "none"}, V400_12, "last_seen"),
    ("workers.get_all", {"last_seen": [1]}, V400_12, "last_seen"),
    ("workers.get_all", {"last_seen": {}}, V400_12, "last_seen"),
    # get_metric_keys
    ("workers.get_metric_keys", {"worker_ids": "w1"}, V400_12, "worker_ids"),
    ("workers.get_metric_keys", {"worker_ids": [1]}, V400_12, "worker_ids"),
    ("workers.get_metric_keys", {"worker_ids": ["w9"]}, (400, 1005), "w9"),
    # get_stats (the full validation table is in test_get_stats.py)
    ("workers.get_stats", {}, V400_12, "from_date"),
    ("workers.get_stats", {"from_date": 0, "to_date": 10, "interval": 1}, V400_12, "items"),
    (
        "workers.get_stats",
        {"from_date": 0, "to_date": 10, "interval": 1e300, "items": [{"key": "a"}]},
        V400_12,
        "interval",
    ),
    (
        "workers.get_stats",
        {"from_date": 10, "to_date": 10, "interval": 1, "items": [{"key": "a"}]},
        (400, 16),
        "from_date",
    ),
    # get_activity_report
    ("workers.get_activity_report", {"from_date": 0, "to_date": 10}, V400_12, "interval"),
    ("workers.get_activity_report", {"from_date": 10, "to_date": 1, "interval": 1}, (400, 16), "to_date"),
    (
        "workers.get_activity_report",
        {"from_date": 0, "to_date": BASE_S + 3600, "interval": 1},  # data from 1970 and from now
        (400, 16),
        "interval",
    ),
]


@pytest.mark.parametrize(
    ("name", "body", "code", "named"), CASES, ids=[f"{c[0][8:]}-{i}" for i, c in enumerate(CASES)]
)
def test_malformed_request_gets_its_code_and_changes_nothing(
    api: JsonApi, name: str, body: Any, code: tuple[int, int], named: str
) -> None:
    _setup(api)
    report(api, "w3", 5_000, {"disk_read": 1})  # 1970: makes an interval-1 activity report too long
    before = _snapshot(api)
    reply = api.call(name, body)
    assert reply.code == code, reply.meta
    assert named in reply.meta["result_msg"]
    assert reply.data == {}
    assert _snapshot(api) == before


def test_activity_report_bucket_cap_is_generous() -> None:
    # a month at one-minute resolution (the UI's finest useful view) stays well within the cap
    assert MAX_BUCKETS > 31 * 24 * 60
