"""End-to-end smoke test through real HTTP: the README's curl session."""

from __future__ import annotations

from workerhub.testing import ServerHandle

from .support import JsonApi


def test_register_report_get_all_get_stats(api: JsonApi) -> None:
    assert api.ok("workers.register", {"worker": "w1"}) == {}
    body = {"worker": "w1", "timestamp": 1_700_000_000_000, "machine_stats": {"cpu_usage": [10, 20, 30]}}
    api.ok("workers.status_report", body)
    api.ok("workers.status_report", {**body, "timestamp": 1_700_000_005_000, "machine_stats": {"cpu_usage": [60]}})
    assert [w["id"] for w in api.ok("workers.get_all")["workers"]] == ["w1"]
    stats = api.ok(
        "workers.get_stats",
        {"from_date": 1_699_999_990, "to_date": 1_700_000_100, "interval": 60, "items": [{"key": "cpu_usage"}]},
    )
    assert stats == {
        "workers": [
            {
                "worker": "w1",
                "metrics": [
                    {
                        "metric": "cpu_usage",
                        "dates": [1_699_999_980_000],
                        "stats": [{"aggregation": "avg", "values": [30.0]}],
                    }
                ],
            }
        ]
    }


def test_expiry_by_advancing_the_clock(api: JsonApi, hub_server: ServerHandle) -> None:
    api.ok("workers.register", {"worker": "w1", "timeout": 30})
    hub_server.advance_clock(29)
    assert [w["id"] for w in api.ok("workers.get_all", {"last_seen": 0})["workers"]] == ["w1"]
    hub_server.advance_clock(2)
    assert api.ok("workers.get_all", {"last_seen": 0})["workers"] == []
    assert api.call("workers.unregister", {"worker": "w1"}).code == (400, 1004)
