"""workers.get_stats (spec §7): epoch-aligned buckets (Q7), whole-second bounds inclusive to +999 ms (Q6),
pooled vs split_by_variant aggregates, ``dates`` in ms (Q1), only non-empty buckets (Q5), ordering by
record count then name (Q9), no truncation to 10 (Q8), request order of stats (Q19), validation."""

from __future__ import annotations

import pytest

from .support import BASE_S, JsonApi, get_stats, ms, report


def values(metric: dict) -> dict[str, list[float]]:
    return {s["aggregation"]: s["values"] for s in metric["stats"]}


# --- buckets and ranges ------------------------------------------------------------------------------


def test_buckets_are_aligned_to_the_epoch_not_to_from_date(api: JsonApi) -> None:  # quirk Q7
    report(api, "w1", ms(61), {"memory_used": 1})
    report(api, "w1", ms(119.999), {"memory_used": 3})
    report(api, "w1", ms(120), {"memory_used": 5})
    [w] = get_stats(api, "memory_used", start=90, end=200, interval=60)
    [m] = w["metrics"]
    # the first bucket key (BASE+60) is earlier than from_date (BASE+90); of its records only those
    # inside the range count (119.999, not 61)
    assert m["dates"] == [ms(60), ms(120)]
    assert values(m) == {"avg": [3.0, 5.0]}


def test_dates_are_epoch_milliseconds_and_ascending(api: JsonApi) -> None:  # quirk Q1
    for offset in (300, 0, 150):
        report(api, "w1", ms(offset), {"memory_used": 1})
    [w] = get_stats(api, "memory_used", interval=100)
    assert w["metrics"][0]["dates"] == [ms(0), ms(100), ms(300)]
    assert all(isinstance(d, int) for d in w["metrics"][0]["dates"])


def test_only_non_empty_buckets_are_returned(api: JsonApi) -> None:  # quirk Q5
    report(api, "w1", ms(0), {"memory_used": 1})
    report(api, "w1", ms(600), {"memory_used": 2})
    [w] = get_stats(api, "memory_used", interval=60)
    assert w["metrics"][0]["dates"] == [ms(0), ms(600)]


def test_the_last_incomplete_bucket_is_kept(api: JsonApi) -> None:  # 2.4 has no cut-off
    report(api, "w1", ms(100), {"memory_used": 7})
    [w] = get_stats(api, "memory_used", start=0, end=101, interval=60)
    assert w["metrics"][0]["dates"] == [ms(60)]


def test_from_date_is_truncated_to_whole_seconds(api: JsonApi) -> None:  # quirk Q6
    report(api, "w1", ms(100), {"memory_used": 1})
    report(api, "w1", ms(100.5), {"memory_used": 2})
    report(api, "w1", ms(99.999), {"memory_used": 4})
    [w] = get_stats(api, "memory_used", start=100.7, end=200, interval=1)
    m = w["metrics"][0]
    assert m["dates"] == [ms(100)]
    assert values(m) == {"avg": [1.5]}  # 100.0 and 100.5, though from_date was 100.7


def test_to_date_is_inclusive_to_the_end_of_its_second(api: JsonApi) -> None:  # quirk Q6
    report(api, "w1", ms(200), {"memory_used": 1})
    report(api, "w1", ms(200.999), {"memory_used": 3})
    report(api, "w1", ms(201), {"memory_used": 100})
    [w] = get_stats(api, "memory_used", start=0, end=200.2, interval=10)
    assert values(w["metrics"][0]) == {"avg": [2.0]}


def test_records_outside_the_range_are_ignored(api: JsonApi) -> None:
    report(api, "w1", ms(-10), {"memory_used": 1})
    assert get_stats(api, "memory_used", start=0, end=100) == []


def test_float_bounds_are_accepted(api: JsonApi) -> None:
    report(api, "w1", ms(10), {"memory_used": 1})
    assert len(get_stats(api, "memory_used", start=0.25, end=20.75, interval=10)) == 1


# --- aggregation --------------------------------------------------------------------------------------


def test_pooled_avg_is_the_mean_of_all_values_not_of_means(api: JsonApi) -> None:
    report(api, "w1", ms(0), {"cpu_usage": [10, 20, 30]})
    report(api, "w1", ms(5), {"cpu_usage": [60]})
    items = [{"key": "cpu_usage", "aggregation": a} for a in ("avg", "min", "max")]
    [w] = get_stats(api, items)
    [m] = w["metrics"]
    assert "variant" not in m
    assert values(m) == {"avg": [30.0], "min": [10.0], "max": [60.0]}  # avg of per-report means would be 40


def test_split_by_variant_aggregates_each_variant(api: JsonApi) -> None:
    report(api, "w1", ms(0), {"cpu_usage": [10, 20, 30]})
    report(api, "w1", ms(5), {"cpu_usage": [60], "memory_used": 8})
    items = [{"key": "cpu_usage", "aggregation": "avg"}, {"key": "memory_used", "aggregation": "max"}]
    [w] = get_stats(api, items, split_by_variant=True)
    got = [(m["metric"], m["variant"], values(m)) for m in w["metrics"]]
    assert got == [
        ("cpu_usage", "0", {"avg": [35.0]}),  # 2 records
        ("cpu_usage", "1", {"avg": [20.0]}),
        ("cpu_usage", "2", {"avg": [30.0]}),
        ("memory_used", "total", {"max": [8.0]}),  # scalars are split too, as variant "total"
    ]


def test_split_false_is_pooled(api: JsonApi) -> None:
    report(api, "w1", ms(0), {"cpu_usage": [10, 20]})
    [w] = get_stats(api, "cpu_usage", split_by_variant=False)
    assert [("variant" in m, values(m)) for m in w["metrics"]] == [(False, {"avg": [15.0]})]


def test_variants_are_ordered_by_count_then_string(api: JsonApi) -> None:  # quirks Q8, Q9
    report(api, "w1", ms(0), {"cpu_usage": list(range(1, 13))})  # 12 cores: variants "0".."11"
    report(api, "w1", ms(1), {"cpu_usage": [5, 5, 5]})  # "0", "1", "2" get a second record
    [w] = get_stats(api, "cpu_usage", split_by_variant=True)
    variants = [m["variant"] for m in w["metrics"]]
    # by count first, then as strings ("10" < "2"); all 12 kept: no ES size-10 truncation
    assert variants == ["0", "1", "2", "10", "11", "3", "4", "5", "6", "7", "8", "9"]


def test_each_variant_has_its_own_dates(api: JsonApi) -> None:
    report(api, "w1", ms(0), {"gpu_usage": [10, 20]})
    report(api, "w1", ms(60), {"gpu_usage": [30]})
    [w] = get_stats(api, "gpu_usage", split_by_variant=True)
    got = {m["variant"]: (m["dates"], values(m)["avg"]) for m in w["metrics"]}
    assert got == {"0": ([ms(0), ms(60)], [10.0, 30.0]), "1": ([ms(0)], [20.0])}


def test_stats_follow_the_request_order_and_duplicates_collapse(api: JsonApi) -> None:  # quirk Q19
    report(api, "w1", ms(0), {"memory_used": 4})
    report(api, "w1", ms(1), {"memory_used": 8})
    items = [
        {"key": "memory_used", "aggregation": "max"},
        {"key": "memory_used", "aggregation": "min"},
        {"key": "memory_used", "aggregation": "max"},
        {"key": "memory_used"},  # avg by default
    ]
    [w] = get_stats(api, items)
    [m] = w["metrics"]
    assert m["stats"] == [
        {"aggregation": "max", "values": [8.0]},
        {"aggregation": "min", "values": [4.0]},
        {"aggregation": "avg", "values": [6.0]},
    ]


def test_sdk_category_spelling_is_accepted(api: JsonApi) -> None:
    report(api, "w1", ms(0), {"memory_used": 4})
    report(api, "w1", ms(1), {"memory_used": 8})
    [w] = get_stats(api, [{"key": "memory_used", "category": "max"}])
    assert w["metrics"][0]["stats"] == [{"aggregation": "max", "values": [8.0]}]


def test_aggregation_wins_over_category(api: JsonApi) -> None:
    report(api, "w1", ms(0), {"memory_used": 4})
    report(api, "w1", ms(1), {"memory_used": 8})
    [w] = get_stats(api, [{"key": "memory_used", "aggregation": "min", "category": "max"}])
    assert w["metrics"][0]["stats"] == [{"aggregation": "min", "values": [4.0]}]


def test_values_are_floats(api: JsonApi) -> None:
    report(api, "w1", ms(0), {"memory_used": 3})
    [w] = get_stats(api, [{"key": "memory_used", "aggregation": "max"}])
    assert all(isinstance(v, float) for v in w["metrics"][0]["stats"][0]["values"])


# --- selection and ordering -----------------------------------------------------------------------------


def test_workers_and_metrics_are_ordered_by_record_count_then_name(api: JsonApi) -> None:  # quirk Q9
    report(api, "b", ms(0), {"memory_used": 1})
    report(api, "a", ms(0), {"memory_used": 1})
    report(api, "c", ms(0), {"memory_used": 1, "cpu_usage": [1, 1]})
    report(api, "c", ms(1), {"network_rx": 1})
    items = [{"key": k} for k in ("network_rx", "memory_used", "cpu_usage")]
    got = get_stats(api, items)
    assert [w["worker"] for w in got] == ["c", "a", "b"]
    assert [m["metric"] for m in got[0]["metrics"]] == ["cpu_usage", "memory_used", "network_rx"]


def test_worker_ids_select_workers_and_unknown_ids_give_nothing(api: JsonApi) -> None:
    report(api, "w1", ms(0), {"memory_used": 1})
    report(api, "w2", ms(0), {"memory_used": 2})
    assert [w["worker"] for w in get_stats(api, "memory_used", worker_ids=["w2"])] == ["w2"]
    assert [w["worker"] for w in get_stats(api, "memory_used", worker_ids=[])] == ["w1", "w2"]
    assert get_stats(api, "memory_used", worker_ids=["ghost"]) == []


def test_keys_and_workers_without_records_are_omitted(api: JsonApi) -> None:
    report(api, "w1", ms(0), {"memory_used": 1})
    report(api, "w2", ms(0), {"cpu_usage": [1]})
    api.ok("workers.register", {"worker": "w3"})
    got = get_stats(api, [{"key": "memory_used"}, {"key": "gpu_usage"}, {"key": "no_such_key"}])
    assert [(w["worker"], [m["metric"] for m in w["metrics"]]) for w in got] == [("w1", ["memory_used"])]


def test_no_truncation_to_ten_workers(api: JsonApi) -> None:  # quirk Q8, deliberate deviation
    for i in range(12):
        report(api, f"w{i:02}", ms(0), {"memory_used": i + 1})
    got = get_stats(api, "memory_used")
    assert [w["worker"] for w in got] == [f"w{i:02}" for i in range(12)]


def test_stats_outlive_the_registration(api: JsonApi) -> None:  # quirk Q18
    report(api, "w1", ms(0), {"memory_used": 1})
    api.ok("workers.unregister", {"worker": "w1"})
    assert [w["worker"] for w in get_stats(api, "memory_used")] == ["w1"]


def test_interval_as_integral_float_is_accepted(api: JsonApi) -> None:
    report(api, "w1", ms(0), {"memory_used": 1})
    body = {
        "from_date": BASE_S - 10,
        "to_date": BASE_S + 10,
        "interval": 60.0,
        "items": [{"key": "memory_used"}],
    }
    assert api.ok("workers.get_stats", body)["workers"][0]["metrics"][0]["dates"] == [ms(0)]


# --- range and validation errors --------------------------------------------------------------------


@pytest.mark.parametrize(("lo", "hi"), [(100, 100), (101, 100), (100.5, 100.2)])
def test_from_date_not_before_to_date_is_400_16(api: JsonApi, lo: float, hi: float) -> None:
    body = {
        "from_date": BASE_S + lo,
        "to_date": BASE_S + hi,
        "interval": 60,
        "items": [{"key": "memory_used"}],
    }
    reply = api.call("workers.get_stats", body)
    assert reply.code == (400, 16)
    assert reply.meta["result_msg"] == "invalid value for fields (from_date must be less than to_date)"


def test_bounds_are_compared_as_given_before_truncation(api: JsonApi) -> None:
    report(api, "w1", ms(100.5), {"memory_used": 1})
    body = {
        "from_date": BASE_S + 100.2,
        "to_date": BASE_S + 100.7,
        "interval": 1,
        "items": [{"key": "memory_used"}],
    }
    assert [w["worker"] for w in api.ok("workers.get_stats", body)["workers"]] == ["w1"]


_GOOD = {"from_date": BASE_S, "to_date": BASE_S + 60, "interval": 10, "items": [{"key": "memory_used"}]}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"from_date": None}, "from_date"),
        ({"to_date": None}, "to_date"),
        ({"interval": None}, "interval"),
        ({"items": None}, "items"),
        ({"from_date": "1700000000"}, "from_date"),
        ({"to_date": -1}, "to_date"),
        ({"from_date": -5}, "from_date"),
        ({"interval": 0}, "interval"),
        ({"interval": 2.5}, "interval"),
        ({"interval": "60"}, "interval"),
        ({"items": []}, "items"),
        ({"items": {"key": "memory_used"}}, "items"),
        ({"items": [{"aggregation": "avg"}]}, "key"),
        ({"items": [{"key": 5}]}, "key"),
        ({"items": [{"key": "memory_used", "aggregation": "sum"}]}, "aggregation"),
        ({"items": [{"key": "memory_used", "category": "median"}]}, "category"),
        ({"items": ["memory_used"]}, "items"),
        ({"worker_ids": "w1"}, "worker_ids"),
        ({"worker_ids": [1]}, "worker_ids"),
        ({"split_by_variant": "yes"}, "split_by_variant"),
    ],
)
def test_validation_errors_are_400_12_naming_the_field(api: JsonApi, change: dict, field: str) -> None:
    body = {**_GOOD, **change}
    body = {k: v for k, v in body.items() if v is not None}
    reply = api.call("workers.get_stats", body)
    assert reply.code == (400, 12), reply.meta
    assert field in reply.meta["result_msg"]
    assert reply.data == {}


def test_no_truncation_to_ten_metrics(api: JsonApi) -> None:  # quirk Q8, deliberate deviation
    lists = [
        "cpu_usage",
        "cpu_temperature",
        "gpu_usage",
        "gpu_temperature",
        "gpu_memory_free",
        "gpu_memory_used",
    ]
    scalars = ["memory_used", "memory_free", "network_tx", "network_rx", "disk_free_home", "disk_free_temp"]
    scalars += ["disk_read", "disk_write"]
    stats = {**{k: [1.0] for k in lists}, **{k: 2.0 for k in scalars}}
    report(api, "w1", ms(0), stats)
    [w] = get_stats(api, [{"key": k} for k in stats])
    assert sorted(m["metric"] for m in w["metrics"]) == sorted(stats)


def test_response_shape_is_exact(api: JsonApi) -> None:
    # no per-bucket doc_count or anything else: 2.4 computes the count and discards it
    report(api, "w1", ms(0), {"gpu_usage": [10, 20]})
    report(api, "w1", ms(60), {"gpu_usage": [30]})
    assert get_stats(api, [{"key": "gpu_usage"}, {"key": "gpu_usage", "aggregation": "max"}]) == [
        {
            "worker": "w1",
            "metrics": [
                {
                    "metric": "gpu_usage",
                    "dates": [ms(0), ms(60)],
                    "stats": [
                        {"aggregation": "avg", "values": [15.0, 30.0]},
                        {"aggregation": "max", "values": [20.0, 30.0]},
                    ],
                }
            ],
        }
    ]


def test_duplicate_worker_ids_count_once(api: JsonApi) -> None:
    report(api, "w1", ms(0), {"memory_used": 2})
    [w] = get_stats(api, "memory_used", worker_ids=["w1", "w1"])
    assert w["metrics"][0]["stats"][0]["values"] == [2.0]


def test_extreme_values_stay_finite(api: JsonApi) -> None:
    big = 2.0**127  # near the float32 limit upstream stores values in (and exact in sums)
    report(api, "w1", ms(0), {"cpu_usage": [big, big, big]})
    [w] = get_stats(api, [{"key": "cpu_usage"}, {"key": "cpu_usage", "aggregation": "max"}])
    assert w["metrics"][0]["stats"] == [
        {"aggregation": "avg", "values": [big]},
        {"aggregation": "max", "values": [big]},
    ]
