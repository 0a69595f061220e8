"""workers.status_report (spec §3, §4): auto-register, expiry renewal, task/queue/queues rules, client IP,
and machine_stats flattening (§4.2: category before the first ``_``, variants, falsy skipping, ms)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest

from workerhub.testing import ServerHandle, running_server

from .support import BASE_S, JsonApi, activity, client_for, get_stats, ms, report, worker_ids, workers

# --- registration effects ------------------------------------------------------------------------------


def test_report_of_an_unknown_worker_auto_registers_it(api: JsonApi) -> None:  # quirk Q15
    report(api, "w1", ms(), queues=["q1"])
    w = workers(api)["w1"]
    assert w["register_timeout"] == 600  # the default timeout, not anything the report said
    assert w["queues"] == [{"id": "q1"}]  # the report's queues are then applied
    assert "last_report_time" in w


def test_auto_registered_worker_has_the_default_timeout(api: JsonApi, hub_server: ServerHandle) -> None:
    report(api, "w1", ms())
    hub_server.advance_clock(599)
    assert worker_ids(api, last_seen=0) == ["w1"]
    hub_server.advance_clock(2)
    assert worker_ids(api, last_seen=0) == []


def test_every_report_rearms_the_registered_timeout(api: JsonApi, hub_server: ServerHandle) -> None:
    api.ok("workers.register", {"worker": "w1", "timeout": 30})
    for _ in range(3):
        hub_server.advance_clock(20)
        report(api, "w1", ms())
    hub_server.advance_clock(29)  # 89 s after register: alive because the last report was 29 s ago
    assert workers(api)["w1"]["register_timeout"] == 30  # the report does not change the timeout
    hub_server.advance_clock(2)
    assert worker_ids(api, last_seen=0) == []


def test_report_after_expiry_registers_afresh(api: JsonApi, hub_server: ServerHandle) -> None:
    api.ok("workers.register", {"worker": "w1", "timeout": 5, "queues": ["q1"]})
    hub_server.advance_clock(6)
    report(api, "w1", ms())
    w = workers(api)["w1"]
    assert w["register_timeout"] == 600 and w["queues"] == []


def test_report_times_are_server_times(api: JsonApi, hub_server: ServerHandle) -> None:
    api.ok("workers.register", {"worker": "w1"})
    registered = workers(api)["w1"]
    assert "last_report_time" not in registered
    hub_server.advance_clock(7)
    report(api, "w1", 1)  # the report's own timestamp (1 ms after the epoch) plays no part
    w = workers(api)["w1"]
    assert w["register_time"] == registered["register_time"]
    t0 = datetime.fromisoformat(registered["register_time"])
    for field in ("last_activity_time", "last_report_time"):
        assert 7 <= (datetime.fromisoformat(w[field]) - t0).total_seconds() < 8


def test_report_records_the_peer_address(api: JsonApi) -> None:
    report(api, "w1", ms())
    assert workers(api)["w1"]["ip"] == "127.0.0.1"


def test_timestamp_is_cast_with_int(api: JsonApi) -> None:
    api.ok(
        "workers.status_report", {"worker": "w1", "timestamp": str(ms()), "machine_stats": {"memory_used": 8}}
    )
    api.ok(
        "workers.status_report",
        {"worker": "w1", "timestamp": ms(60) + 0.7, "machine_stats": {"memory_used": 9}},
    )
    [w] = get_stats(api, "memory_used")
    assert w["metrics"][0]["dates"] == [ms(), ms(60)]


def test_unknown_fields_are_ignored(api: JsonApi) -> None:
    report(api, "w1", ms(), {"memory_used": 1}, method="get", is_daemon=True)
    assert worker_ids(api, last_seen=0) == ["w1"]


# --- task / queue / queues ---------------------------------------------------------------------------


def test_task_is_stored_as_an_id_with_a_running_time(api: JsonApi, hub_server: ServerHandle) -> None:
    report(api, "w1", ms(), task="t1")
    hub_server.advance_clock(5)
    report(api, "w1", ms(5), task="t1")  # same task: running time keeps counting from its start
    task = workers(api)["w1"]["task"]
    assert task["id"] == "t1"
    assert 5000 <= task["running_time"] < 6000  # milliseconds
    assert "project" not in workers(api)["w1"]  # no task store, so no project


def test_a_new_task_restarts_the_running_time(api: JsonApi, hub_server: ServerHandle) -> None:
    report(api, "w1", ms(), task="t1")
    hub_server.advance_clock(5)
    report(api, "w1", ms(5), task="t2")
    task = workers(api)["w1"]["task"]
    assert task["id"] == "t2" and task["running_time"] < 1000


@pytest.mark.parametrize("clear", [{}, {"task": None}, {"task": ""}])
def test_task_is_cleared_when_not_sent_or_empty(api: JsonApi, clear: dict) -> None:
    report(api, "w1", ms(), task="t1")
    report(api, "w1", ms(1), **clear)
    assert "task" not in workers(api)["w1"]


def test_queue_is_shown_only_when_it_is_in_queues(api: JsonApi) -> None:  # quirk Q11
    api.ok("workers.register", {"worker": "w1", "queues": ["q1"]})
    report(api, "w1", ms(), queue="q2")
    assert "queue" not in workers(api)["w1"]
    report(api, "w1", ms(), queue="q1")
    assert workers(api)["w1"]["queue"] == {"id": "q1"}


def test_queue_is_cleared_when_not_sent(api: JsonApi) -> None:
    report(api, "w1", ms(), queues=["q1"], queue="q1")
    report(api, "w1", ms(1))
    w = workers(api)["w1"]
    assert "queue" not in w
    assert w["queues"] == [{"id": "q1"}]


def test_sent_queues_replace_the_list(api: JsonApi) -> None:
    api.ok("workers.register", {"worker": "w1", "queues": ["q1", "q2"]})
    report(api, "w1", ms(), queues=["q3"])
    assert workers(api)["w1"]["queues"] == [{"id": "q3"}]


@pytest.mark.parametrize("keep", [{}, {"queues": None}, {"queues": []}])
def test_absent_null_or_empty_queues_keep_the_list(api: JsonApi, keep: dict) -> None:  # quirk Q12
    api.ok("workers.register", {"worker": "w1", "queues": ["q1", "q2"]})
    report(api, "w1", ms(), **keep)
    assert workers(api)["w1"]["queues"] == [{"id": "q1"}, {"id": "q2"}]


def test_queue_shown_through_queues_kept_from_register(api: JsonApi) -> None:
    api.ok("workers.register", {"worker": "w1", "queues": ["q1"]})
    report(api, "w1", ms(), queue="q1", queues=[])
    assert workers(api)["w1"]["queue"] == {"id": "q1"}


# --- machine_stats → records (§4.2) -----------------------------------------------------------------


def _keys(api: JsonApi, **body: object) -> list[dict]:
    return api.ok("workers.get_metric_keys", body)["categories"]


def test_list_fields_become_variants_and_scalars_total(api: JsonApi) -> None:
    report(api, "w1", ms(), {"cpu_usage": [10, 20, 30], "gpu_temperature": [50, 60], "memory_used": 1024})
    got = get_stats(
        api,
        [{"key": "cpu_usage"}, {"key": "gpu_temperature"}, {"key": "memory_used"}],
        split_by_variant=True,
    )
    [w] = got
    series = {(m["metric"], m["variant"]): m["stats"][0]["values"] for m in w["metrics"]}
    assert series == {
        ("cpu_usage", "0"): [10.0],
        ("cpu_usage", "1"): [20.0],
        ("cpu_usage", "2"): [30.0],
        ("gpu_temperature", "0"): [50.0],
        ("gpu_temperature", "1"): [60.0],
        ("memory_used", "total"): [1024.0],
    }


def test_category_is_the_text_before_the_first_underscore(api: JsonApi) -> None:
    stats = {
        "cpu_usage": [1],
        "cpu_temperature": [1],
        "gpu_usage": [1],
        "gpu_temperature": [1],
        "gpu_memory_free": [1],
        "gpu_memory_used": [1],
        "memory_used": 1,
        "memory_free": 1,
        "network_tx": 1,
        "network_rx": 1,
        "disk_free_home": 1,
        "disk_free_temp": 1,
        "disk_read": 1,
        "disk_write": 1,
    }
    report(api, "w1", ms(), stats)
    got = {c["name"]: sorted(c["metric_keys"]) for c in _keys(api)}
    assert got == {
        "cpu": ["cpu_temperature", "cpu_usage"],
        "gpu": ["gpu_memory_free", "gpu_memory_used", "gpu_temperature", "gpu_usage"],
        "memory": ["memory_free", "memory_used"],
        "network": ["network_rx", "network_tx"],
        "disk": ["disk_free_home", "disk_free_temp", "disk_read", "disk_write"],
    }


def test_unknown_machine_stats_keys_are_dropped(api: JsonApi) -> None:
    # gpu_fraction is sent by today's agent and dropped by the server (spec §4.2)
    report(api, "w1", ms(), {"cpu_usage": [5], "gpu_fraction": 0.5, "foo_bar": "text", "gpu": [1], "disk": {"a": 1}})
    assert _keys(api) == [{"name": "cpu", "metric_keys": ["cpu_usage"]}]
    assert get_stats(api, "gpu_fraction") == []


@pytest.mark.parametrize(("scalar", "listed"), [(0, []), (0.0, []), (None, None)])
def test_falsy_field_values_are_not_recorded(api: JsonApi, scalar: object, listed: object) -> None:  # Q2
    report(api, "w1", ms(), {"network_rx": scalar, "gpu_usage": listed, "memory_used": 5})
    assert _keys(api) == [{"name": "memory", "metric_keys": ["memory_used"]}]


def test_zeros_inside_a_list_are_recorded(api: JsonApi) -> None:
    report(api, "w1", ms(), {"cpu_usage": [0, 40]})
    [w] = get_stats(api, [{"key": "cpu_usage", "aggregation": "min"}], split_by_variant=True)
    assert [(m["variant"], m["stats"][0]["values"]) for m in w["metrics"]] == [("0", [0.0]), ("1", [40.0])]


def test_a_zero_reading_leaves_a_gap_in_the_dates(api: JsonApi) -> None:
    report(api, "w1", ms(0), {"network_rx": 5, "memory_used": 1})
    report(api, "w1", ms(60), {"network_rx": 0, "memory_used": 1})
    [w] = get_stats(api, [{"key": "network_rx"}, {"key": "memory_used"}])
    dates = {m["metric"]: m["dates"] for m in w["metrics"]}
    assert dates == {"memory_used": [ms(0), ms(60)], "network_rx": [ms(0)]}


def test_a_report_without_records_leaves_no_trace_in_stats(api: JsonApi) -> None:
    report(api, "w1", ms())
    report(api, "w1", ms(), {"memory_used": 0, "cpu_usage": []})
    assert worker_ids(api, last_seen=0) == ["w1"]
    assert api.call("workers.get_metric_keys", {}).code == (400, 1005)
    assert get_stats(api, "memory_used") == []
    assert activity(api, start=-3600, end=3600)["total"] == {"dates": [], "counts": []}


def test_booleans_count_as_numbers(api: JsonApi) -> None:
    # upstream's FloatField takes JSON booleans (bool is an int in Python); spec §0.4
    report(api, "w1", ms(), {"memory_used": True, "cpu_usage": [True, False]})
    [w] = get_stats(api, [{"key": "memory_used"}, {"key": "cpu_usage", "aggregation": "max"}])
    values = {m["metric"]: m["stats"][0]["values"] for m in w["metrics"]}
    assert values == {"memory_used": [1.0], "cpu_usage": [1.0]}


def test_timestamps_are_epoch_milliseconds(api: JsonApi) -> None:  # quirk Q1
    report(api, "w1", ms(), {"memory_used": 1})
    report(api, "w1", BASE_S, {"memory_used": 2})  # seconds sent by mistake: read as ms → January 1970
    [w] = get_stats(api, "memory_used")
    assert w["metrics"][0]["dates"] == [ms()]
    assert w["metrics"][0]["stats"][0]["values"] == [1.0]
    body = {"from_date": 0, "to_date": 30 * 86400, "interval": 86400, "items": [{"key": "memory_used"}]}
    [early] = api.ok("workers.get_stats", body)["workers"]
    assert early["metrics"][0]["dates"] == [(BASE_S // 86_400_000) * 86_400_000]
    assert early["metrics"][0]["stats"][0]["values"] == [2.0]


def test_past_future_and_out_of_order_timestamps_are_accepted(api: JsonApi) -> None:
    for offset, value in [(120, 3), (0, 1), (60, 2), (-3000, 7)]:
        report(api, "w1", ms(offset), {"memory_used": value})
    [w] = get_stats(api, "memory_used")
    m = w["metrics"][0]
    assert m["dates"] == [ms(-3000), ms(0), ms(60), ms(120)]
    assert m["stats"][0]["values"] == [7.0, 1.0, 2.0, 3.0]


def test_records_carry_the_reports_task(api: JsonApi) -> None:
    report(api, "w1", ms(0), {"memory_used": 1}, task="t1")
    report(api, "w2", ms(0), {"memory_used": 1})
    report(api, "w1", ms(60), {"memory_used": 1})  # closes the range: the last bucket is always dropped
    report(api, "w2", ms(60), {"memory_used": 1})
    got = activity(api, start=-600, end=600)
    assert got["total"] == {"dates": [ms(0)], "counts": [2]}
    assert got["active"] == {"dates": [], "counts": []}  # only one bucket with a task, and it is dropped


# --- auto_register off ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def strict() -> Iterator[ServerHandle]:
    with running_server(auto_register=False) as handle:
        yield handle


@pytest.fixture
def strict_api(strict: ServerHandle) -> Iterator[JsonApi]:
    strict.reset()
    with client_for(strict) as client:
        yield JsonApi(client)


def test_without_auto_register_an_unknown_worker_is_1001(strict_api: JsonApi) -> None:
    body = {"worker": "w1", "timestamp": ms(), "machine_stats": {"memory_used": 1}}
    reply = strict_api.call("workers.status_report", body)
    assert reply.code == (400, 1001)
    assert reply.meta["result_msg"] == "invalid worker id: worker=w1"
    assert worker_ids(strict_api, last_seen=0) == []
    assert strict_api.call("workers.get_metric_keys", {}).code == (400, 1005)  # nothing recorded
    strict_api.ok("workers.register", {"worker": "w1"})
    assert strict_api.ok("workers.status_report", body) == {}
