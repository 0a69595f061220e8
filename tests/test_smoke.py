"""End-to-end smoke test through real HTTP: the README's curl session."""

from __future__ import annotations

import httpx


def call(http: httpx.Client, name: str, body: dict) -> dict:
    r = http.post(f"/{name}", json=body)
    reply = r.json()
    assert r.status_code == reply["meta"]["result_code"]
    return reply


def test_register_report_get_all_get_stats(http: httpx.Client) -> None:
    assert call(http, "workers.register", {"worker": "w1"})["data"] == {}
    body = {"worker": "w1", "timestamp": 1_700_000_000_000, "machine_stats": {"cpu_usage": [10, 20, 30]}}
    call(http, "workers.status_report", body)
    call(http, "workers.status_report", {**body, "timestamp": 1_700_000_005_000, "machine_stats": {"cpu_usage": [60]}})
    workers = call(http, "workers.get_all", {})["data"]["workers"]
    assert [w["id"] for w in workers] == ["w1"]
    stats = call(
        http,
        "workers.get_stats",
        {"from_date": 1_699_999_990, "to_date": 1_700_000_100, "interval": 60, "items": [{"key": "cpu_usage"}]},
    )["data"]
    assert stats == {
        "workers": [
            {
                "worker": "w1",
                "metrics": [
                    {"metric": "cpu_usage", "dates": [1_699_999_980_000], "stats": [{"aggregation": "avg", "values": [30.0]}]}
                ],
            }
        ]
    }


def test_expiry_by_advancing_the_clock(http: httpx.Client, hub_server) -> None:
    call(http, "workers.register", {"worker": "w1", "timeout": 30})
    hub_server.advance_clock(29)
    assert [w["id"] for w in call(http, "workers.get_all", {"last_seen": 0})["data"]["workers"]] == ["w1"]
    hub_server.advance_clock(2)
    assert call(http, "workers.get_all", {"last_seen": 0})["data"]["workers"] == []
    reply = call(http, "workers.unregister", {"worker": "w1"})
    assert (reply["meta"]["result_code"], reply["meta"]["result_subcode"]) == (400, 1004)
