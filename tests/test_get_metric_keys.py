"""workers.get_metric_keys (spec §6): 1005 when there is nothing, ordering by record count then name
(quirk Q9), all retained history including workers that are gone (Q18)."""

from __future__ import annotations

from workerhub.testing import ServerHandle

from .support import JsonApi, ms, report


def keys(api: JsonApi, **body: object) -> list[dict]:
    return api.ok("workers.get_metric_keys", body)["categories"]


def test_no_stats_at_all_is_1005(api: JsonApi) -> None:
    api.ok("workers.register", {"worker": "w1"})
    reply = api.call("workers.get_metric_keys", {})
    assert reply.code == (400, 1005)
    assert reply.meta["result_msg"].startswith(
        "worker stats not found (No statistic metrics found for the company"
    )
    assert reply.data == {}


def test_unknown_worker_ids_are_1005(api: JsonApi) -> None:
    report(api, "w1", ms(), {"memory_used": 1})
    reply = api.call("workers.get_metric_keys", {"worker_ids": ["ghost"]})
    assert reply.code == (400, 1005)
    assert "ghost" in reply.meta["result_msg"]


def test_ordering_by_record_count_then_name(api: JsonApi) -> None:  # quirk Q9
    report(api, "w1", ms(0), {"cpu_usage": [1, 2, 3], "disk_read": 1, "network_tx": 1, "network_rx": 1})
    report(
        api, "w1", ms(10), {"gpu_usage": [1], "gpu_temperature": [1, 1], "memory_free": 1, "memory_used": 1}
    )
    report(api, "w1", ms(20), {"memory_used": 1, "disk_write": 1})
    # records: cpu 3, gpu 3 (temperature 2, usage 1), memory 3 (used 2, free 1), network 2, disk 2
    assert keys(api) == [
        {"name": "cpu", "metric_keys": ["cpu_usage"]},
        {"name": "gpu", "metric_keys": ["gpu_temperature", "gpu_usage"]},
        {"name": "memory", "metric_keys": ["memory_used", "memory_free"]},
        {"name": "disk", "metric_keys": ["disk_read", "disk_write"]},
        {"name": "network", "metric_keys": ["network_rx", "network_tx"]},
    ]


def test_counts_are_summed_over_the_selected_workers(api: JsonApi) -> None:
    report(api, "w1", ms(), {"memory_used": 1, "memory_free": 1})
    report(api, "w2", ms(), {"memory_free": 1})
    report(
        api, "w3", ms(), {"memory_used": 1, "memory_free": 1, "cpu_usage": [1, 1, 1, 1, 1, 1]}
    )  # cpu 6 > memory 5
    assert keys(api, worker_ids=["w1", "w2"]) == [
        {"name": "memory", "metric_keys": ["memory_free", "memory_used"]}
    ]
    assert keys(api, worker_ids=["w2"]) == [{"name": "memory", "metric_keys": ["memory_free"]}]
    everything = [
        {"name": "cpu", "metric_keys": ["cpu_usage"]},
        {"name": "memory", "metric_keys": ["memory_free", "memory_used"]},
    ]
    assert keys(api) == everything
    assert keys(api, worker_ids=[]) == everything  # empty = all workers
    assert keys(api, worker_ids=None) == everything


def test_unknown_ids_among_known_ones_are_ignored(api: JsonApi) -> None:
    report(api, "w1", ms(), {"memory_used": 1})
    assert keys(api, worker_ids=["ghost", "w1"]) == [{"name": "memory", "metric_keys": ["memory_used"]}]


def test_there_is_no_time_range(api: JsonApi) -> None:
    report(api, "w1", 1, {"disk_read": 1})  # 1970
    report(api, "w1", ms(), {"memory_used": 1})
    assert {c["name"] for c in keys(api)} == {"disk", "memory"}


def test_history_outlives_unregister(api: JsonApi) -> None:  # quirk Q18
    report(api, "w1", ms(), {"memory_used": 1})
    api.ok("workers.unregister", {"worker": "w1"})
    assert keys(api, worker_ids=["w1"]) == [{"name": "memory", "metric_keys": ["memory_used"]}]
    assert keys(api) == [{"name": "memory", "metric_keys": ["memory_used"]}]


def test_history_outlives_expiry(api: JsonApi, hub_server: ServerHandle) -> None:  # quirk Q18
    api.ok("workers.register", {"worker": "w1", "timeout": 5})
    report(api, "w1", ms(), {"cpu_usage": [3]})
    hub_server.advance_clock(6)
    assert api.ok("workers.get_all", {"last_seen": 0})["workers"] == []
    assert keys(api) == [{"name": "cpu", "metric_keys": ["cpu_usage"]}]


def test_registered_workers_without_stats_do_not_count(api: JsonApi) -> None:
    api.ok("workers.register", {"worker": "w1"})
    report(api, "w1", ms())  # no machine_stats
    assert api.call("workers.get_metric_keys", {"worker_ids": ["w1"]}).code == (400, 1005)
