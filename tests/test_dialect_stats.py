"""API 2.32+ get_stats and get_activity_report: the zero-filled epoch-aligned grid (api-versions §4.5,
§4.6; checklist V29-V46), against a server at the default max_api_version 2.34."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from .dialect_support import ServerHandle, cleared, head_server  # noqa: F401 (head_server: a fixture)
from .support import JsonApi

HEAD = "v2.34/"


@pytest.fixture
def hub_server(head_server: ServerHandle) -> ServerHandle:  # noqa: F811
    """Overrides conftest's: the ``api`` fixture talks to the 2.34 server."""
    return cleared(head_server)


def report(api: JsonApi, worker: str, at_s: float, stats: dict[str, Any], **fields: Any) -> None:
    body = {"worker": worker, "timestamp": round(at_s * 1000), "machine_stats": stats, **fields}
    assert api.ok(HEAD + "workers.status_report", body) == {}


def stats(
    api: JsonApi, from_s: float, to_s: float, interval: int, items: Any, **body: Any
) -> list[dict[str, Any]]:
    if isinstance(items, str):
        items = [{"key": items}]
    query = {"from_date": from_s, "to_date": to_s, "interval": interval, "items": items, **body}
    return api.ok(HEAD + "workers.get_stats", query)["workers"]


def activity(api: JsonApi, from_s: float, to_s: float, interval: int) -> dict[str, Any]:
    return api.ok(
        HEAD + "workers.get_activity_report", {"from_date": from_s, "to_date": to_s, "interval": interval}
    )


def grid(first_s: int, n: int, step_s: int = 40) -> list[int]:
    return [(first_s + k * step_s) * 1000 for k in range(n)]


T = 1_700_000_000  # a multiple of 40 s


# --- get_stats --------------------------------------------------------------------------------------------


def test_v29_response_shape(api: JsonApi) -> None:
    report(api, "w1", T, {"cpu_usage": [10.0]})
    (worker,) = stats(api, T, T + 100, 40, "cpu_usage")
    assert worker == {
        "worker": "w1",
        "metrics": [
            {
                "metric": "cpu_usage",
                "stats": [
                    {"aggregation": "avg", "dates": grid(T, 2), "values": [10.0, 0.0], "resource_series": []}
                ],
            }
        ],
    }
    assert all(type(d) is int for d in worker["metrics"][0]["stats"][0]["dates"])


@pytest.mark.parametrize(("interval", "step"), [(1, 40), (39, 40), (40, 40), (60, 60), (3600, 3600)])
def test_v30_the_interval_floor_is_40_s(api: JsonApi, interval: int, step: int) -> None:
    report(api, "w1", T, {"cpu_usage": [10.0]})
    (worker,) = stats(api, T, T + 10 * 3600, interval, "cpu_usage")
    dates = worker["metrics"][0]["stats"][0]["dates"]
    assert {b - a for a, b in itertools.pairwise(dates)} == {step * 1000}


@pytest.mark.parametrize(("to", "n"), [(1400, 10), (1399.5, 10), (1395, 9)])
def test_v31_the_trailing_bucket_goes_by_the_90_percent_rule(api: JsonApi, to: float, n: int) -> None:
    report(api, "w1", 1000, {"cpu_usage": [5.0]})
    (worker,) = stats(api, 1000, to, 1, "cpu_usage")
    stat = worker["metrics"][0]["stats"][0]
    assert stat["dates"] == grid(1000, n)
    assert stat["values"] == [5.0] + [0.0] * (n - 1)


def test_v32_v33_zero_fill_and_pooling(api: JsonApi) -> None:
    report(api, "w1", T + 40, {"cpu_usage": [10.0, 20.0]})
    report(api, "w1", T + 41, {"cpu_usage": [30.0]})
    items = [{"key": "cpu_usage", "aggregation": a} for a in ("avg", "min", "max")]
    (worker,) = stats(api, T, T + 200, 40, items)
    got = {s["aggregation"]: s["values"] for s in worker["metrics"][0]["stats"]}
    assert got == {
        "avg": [0.0, 20.0, 0.0, 0.0, 0.0],
        "min": [0.0, 10.0, 0.0, 0.0, 0.0],
        "max": [0.0, 30.0, 0.0, 0.0, 0.0],
    }


def test_v34_workers_without_records_of_a_key_are_absent(api: JsonApi) -> None:
    report(api, "w1", T, {"cpu_usage": [1.0], "memory_used": 5.0})
    report(api, "w2", T, {"memory_used": 7.0})
    got = stats(api, T, T + 100, 40, [{"key": "cpu_usage"}, {"key": "memory_used"}])
    assert [(w["worker"], [m["metric"] for m in w["metrics"]]) for w in got] == [
        ("w1", ["cpu_usage", "memory_used"]),
        ("w2", ["memory_used"]),
    ]
    assert stats(api, T, T + 100, 40, "cpu_usage", worker_ids=["nobody"]) == []


def test_metrics_follow_the_request_order(api: JsonApi) -> None:
    report(api, "w1", T, {"cpu_usage": [1.0], "memory_used": 5.0, "network_rx": 1.0})
    (worker,) = stats(
        api, T, T + 100, 40, [{"key": "network_rx"}, {"key": "cpu_usage"}, {"key": "memory_used"}]
    )
    assert [m["metric"] for m in worker["metrics"]] == ["network_rx", "cpu_usage", "memory_used"]


def test_v35_split_by_resource(api: JsonApi) -> None:
    report(api, "w1", T + 40, {"gpu_usage": [60.0, 70.0]})
    report(api, "w1", T + 45, {"gpu_usage": [40.0]})
    (worker,) = stats(api, T, T + 200, 40, "gpu_usage", split_by_resource=True)
    (stat,) = worker["metrics"][0]["stats"]
    assert stat["values"] == [0.0, pytest.approx(56.666666), 0.0, 0.0, 0.0]
    assert stat["resource_series"] == [
        {"name": "0", "values": [0.0, 50.0, 0.0, 0.0, 0.0]},
        {"name": "1", "values": [0.0, 70.0, 0.0, 0.0, 0.0]},
    ]


def test_resource_series_are_in_numeric_order_per_aggregation(api: JsonApi) -> None:
    report(api, "w1", T, {"gpu_temperature": [float(i) for i in range(12)]})
    items = [
        {"key": "gpu_temperature", "aggregation": "max"},
        {"key": "gpu_temperature", "aggregation": "min"},
    ]
    (worker,) = stats(api, T, T + 100, 40, items, split_by_resource=True)
    for stat in worker["metrics"][0]["stats"]:
        assert [s["name"] for s in stat["resource_series"]] == [str(i) for i in range(12)]
        assert [s["values"] for s in stat["resource_series"]] == [[float(i), 0.0] for i in range(12)]


def test_v36_no_resource_series_for_cpu_or_a_single_gpu(api: JsonApi) -> None:
    report(api, "w1", T, {"cpu_usage": [1.0, 2.0], "gpu_usage": [3.0]})
    got = stats(api, T, T + 100, 40, [{"key": "cpu_usage"}, {"key": "gpu_usage"}], split_by_resource=True)
    assert [s["resource_series"] for m in got[0]["metrics"] for s in m["stats"]] == [[], []]


def test_v37_split_by_variant_is_ignored(api: JsonApi) -> None:
    report(api, "w1", T, {"cpu_usage": [1.0, 2.0]})
    assert stats(api, T, T + 100, 40, "cpu_usage", split_by_variant=True) == stats(
        api, T, T + 100, 40, "cpu_usage"
    )


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"key": "foo"}, "items[0].key"),
        ({"key": "cpu_usage", "aggregation": "sum"}, "items[0].aggregation"),
        ({"key": "cpu_usage", "aggregation": None}, "items[0].aggregation"),  # a 500 upstream
    ],
)
def test_v38_keys_and_aggregations_are_checked(api: JsonApi, item: dict[str, Any], field: str) -> None:
    reply = api.call(
        HEAD + "workers.get_stats", {"from_date": T, "to_date": T + 100, "interval": 40, "items": [item]}
    )
    assert reply.code == (400, 12) and field in reply.meta["result_msg"]


def test_v38_gpu_fraction_is_a_key_without_data(api: JsonApi) -> None:
    report(api, "w1", T, {"cpu_usage": [1.0], "gpu_fraction": [0.5]})
    assert stats(api, T, T + 100, 40, "gpu_fraction") == []


def test_v39_category_is_ignored(api: JsonApi) -> None:
    report(api, "w1", T, {"cpu_usage": [1.0, 3.0]})
    (worker,) = stats(api, T, T + 100, 40, [{"key": "cpu_usage", "category": "max"}])
    (stat,) = worker["metrics"][0]["stats"]
    assert (stat["aggregation"], stat["values"]) == ("avg", [2.0, 0.0])


def test_v40_duplicate_items_collapse(api: JsonApi) -> None:
    report(api, "w1", T, {"cpu_usage": [1.0, 3.0]})
    items = [{"key": "cpu_usage", "aggregation": a} for a in ("max", "avg", "max")]
    (worker,) = stats(api, T, T + 100, 40, items)
    (metric,) = worker["metrics"]
    assert [(s["aggregation"], s["values"]) for s in metric["stats"]] == [
        ("max", [3.0, 0.0]),
        ("avg", [2.0, 0.0]),
    ]
    assert metric["stats"][0]["dates"] == metric["stats"][1]["dates"]


def test_v41_below_2_32_get_stats_keeps_the_2_4_shape(api: JsonApi) -> None:
    report(api, "w1", T, {"cpu_usage": [1.0, 3.0]})
    body = {"from_date": T, "to_date": T + 100, "interval": 40, "items": [{"key": "cpu_usage"}]}
    (old,) = api.ok("v2.31/workers.get_stats", body)["workers"]
    assert old["metrics"] == [
        {"metric": "cpu_usage", "dates": [T * 1000], "stats": [{"aggregation": "avg", "values": [2.0]}]}
    ]
    # and an unknown key is an empty answer there, as in 2020
    assert api.ok("v2.4/workers.get_stats", {**body, "items": [{"key": "foo"}]}) == {"workers": []}


@pytest.mark.parametrize("name", ["workers.get_stats", "workers.get_activity_report"])
def test_v42_from_must_be_before_to(api: JsonApi, name: str) -> None:
    reply = api.call(
        HEAD + name, {"from_date": T, "to_date": T, "interval": 40, "items": [{"key": "cpu_usage"}]}
    )
    assert reply.code == (400, 16)
    assert reply.meta["result_msg"] == "invalid value for fields (from_date must be less than to_date)"


@pytest.mark.parametrize("name", ["workers.get_stats", "workers.get_activity_report"])
def test_a_grid_too_large_is_400_16_naming_interval(api: JsonApi, name: str) -> None:
    report(api, "w1", T, {"cpu_usage": [1.0]})
    reply = api.call(
        HEAD + name, {"from_date": 0, "to_date": T, "interval": 40, "items": [{"key": "cpu_usage"}]}
    )
    assert reply.code == (400, 16) and "interval" in reply.meta["result_msg"]


def test_split_by_resource_must_be_a_boolean(api: JsonApi) -> None:
    body = {
        "from_date": T,
        "to_date": T + 100,
        "interval": 40,
        "items": [{"key": "gpu_usage"}],
        "split_by_resource": 1,
    }
    reply = api.call(HEAD + "workers.get_stats", body)
    assert reply.code == (400, 12) and "split_by_resource" in reply.meta["result_msg"]


# --- get_activity_report ----------------------------------------------------------------------------------


def test_v43_zero_filled_activity_grid(api: JsonApi) -> None:
    report(api, "w1", 1000, {"cpu_usage": [1.0]})
    report(api, "w1", 1100, {"cpu_usage": [1.0]})
    got = activity(api, 1000, 1400, 2)
    counts = [1, 0, 1, 0, 0, 0, 0, 0, 0, 0]
    assert got == {
        "total": {"dates": grid(1000, 10), "counts": counts},
        "active": {"dates": grid(1000, 10), "counts": [0] * 10},
    }


def test_v44_the_last_bucket_is_always_dropped(api: JsonApi) -> None:
    report(api, "w1", 1400, {"cpu_usage": [1.0]})
    assert activity(api, 1000, 1400, 2)["total"]["counts"] == [0] * 10  # 1400 s sits in the dropped bucket...
    assert activity(api, 1000, 1480, 2)["total"]["counts"] == [0] * 10 + [1, 0]  # ...counted when not last
    assert activity(api, 1000, 1030, 2) == {
        "total": {"dates": [], "counts": []},
        "active": {"dates": [], "counts": []},
    }


def test_v45_no_stats_no_grid(api: JsonApi) -> None:
    empty = {"total": {"dates": [], "counts": []}, "active": {"dates": [], "counts": []}}
    assert activity(api, 1000, 1400, 40) == empty
    report(api, "w1", T, {"cpu_usage": [1.0]})  # any stats at all, far from the range
    got = activity(api, 1000, 1400, 40)
    assert got["total"] == {"dates": grid(1000, 10), "counts": [0] * 10}


def test_v46_active_counts_workers_with_a_task_total_counts_workers(api: JsonApi) -> None:
    for k in range(3):
        report(api, "w1", T + k, {"cpu_usage": [1.0]}, task="t1")
    report(api, "w2", T + 1, {"cpu_usage": [1.0]})
    got = activity(api, T, T + 100, 40)
    assert got["total"]["counts"] == [2, 0] and got["active"]["counts"] == [1, 0]


def test_activity_below_2_32_keeps_the_2_4_answer(api: JsonApi) -> None:
    report(api, "w1", T, {"cpu_usage": [1.0]})
    report(api, "w1", T + 60, {"cpu_usage": [1.0]})
    body = {"from_date": T - 600, "to_date": T + 600, "interval": 20}
    # first..last non-empty 20 s bucket (no 40 s floor), the last dropped (quirk Q3)
    got = api.ok("v2.31/workers.get_activity_report", body)["total"]
    assert got == {"dates": grid(T, 3, 20), "counts": [1, 0, 0]}
