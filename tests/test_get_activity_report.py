"""workers.get_activity_report (spec §8): distinct workers per bucket, ``active`` = records that carried a
task, first..last non-empty bucket with zeros between (Q4), the last bucket always dropped (Q3); and the
opt-in fixed mode (``fix_quirks``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from workerhub.testing import ServerHandle, running_server

from .support import JsonApi, activity, client_for, get_stats, ms, report

EMPTY = {"dates": [], "counts": []}


def test_no_records_give_empty_series(api: JsonApi) -> None:
    api.ok("workers.register", {"worker": "w1"})
    assert activity(api) == {"total": EMPTY, "active": EMPTY}


def test_counts_are_distinct_workers_per_bucket(api: JsonApi) -> None:
    for offset in (0, 10, 20):
        report(api, "w1", ms(offset), {"memory_used": 1})
    report(api, "w2", ms(30), {"cpu_usage": [1, 2]})
    report(api, "w1", ms(60), {"memory_used": 1})
    report(api, "w1", ms(120), {"memory_used": 1})  # the last bucket: always dropped
    got = activity(api, interval=60)
    assert got["total"] == {"dates": [ms(0), ms(60)], "counts": [2, 1]}


def test_the_last_non_empty_bucket_is_always_dropped(api: JsonApi) -> None:  # quirk Q3
    report(api, "w1", ms(0), {"memory_used": 1})
    report(api, "w1", ms(60), {"memory_used": 1})
    # to_date lies far past the last bucket, so that bucket is complete: dropped all the same
    got = activity(api, start=-3600, end=36_000, interval=60)
    assert got["total"] == {"dates": [ms(0)], "counts": [1]}


def test_data_in_a_single_bucket_gives_empty_series(api: JsonApi) -> None:  # quirk Q3
    report(api, "w1", ms(0), {"memory_used": 1}, task="t1")
    report(api, "w2", ms(59), {"memory_used": 1}, task="t2")
    assert activity(api, interval=60) == {"total": EMPTY, "active": EMPTY}


def test_zeros_fill_the_gaps_between_first_and_last(api: JsonApi) -> None:  # quirk Q4
    report(api, "w1", ms(0), {"memory_used": 1})
    report(api, "w1", ms(180), {"memory_used": 1})
    report(api, "w1", ms(300), {"memory_used": 1})
    got = activity(api, start=-3600, end=3600, interval=60)
    assert got["total"] == {"dates": [ms(0), ms(60), ms(120), ms(180), ms(240)], "counts": [1, 0, 0, 1, 0]}


def test_active_counts_workers_whose_records_carried_a_task(api: JsonApi) -> None:
    report(api, "w1", ms(0), {"memory_used": 1}, task="t1")
    report(api, "w2", ms(0), {"memory_used": 1})
    report(api, "w3", ms(60), {"memory_used": 1}, task="t3")
    report(api, "w2", ms(60), {"memory_used": 1}, task="t2")
    report(api, "w1", ms(120), {"memory_used": 1}, task="t1")
    report(api, "w1", ms(180), {"memory_used": 1}, task="t1")
    got = activity(api, interval=60)
    assert got["total"] == {"dates": [ms(0), ms(60), ms(120)], "counts": [2, 2, 1]}
    assert got["active"] == {"dates": [ms(0), ms(60), ms(120)], "counts": [1, 2, 1]}


def test_an_empty_string_task_counts_as_active(api: JsonApi) -> None:  # spec §8 quirk
    report(api, "w1", ms(0), {"memory_used": 1}, task="")
    report(api, "w1", ms(60), {"memory_used": 1}, task="")
    assert activity(api, interval=60)["active"] == {"dates": [ms(0)], "counts": [1]}
    assert "task" not in api.ok("workers.get_all", {"last_seen": 0})["workers"][0]  # yet no task is shown


def test_total_and_active_cover_their_own_ranges(api: JsonApi) -> None:
    report(api, "w1", ms(0), {"memory_used": 1})
    report(api, "w1", ms(60), {"memory_used": 1}, task="t")
    report(api, "w1", ms(120), {"memory_used": 1}, task="t")
    report(api, "w1", ms(180), {"memory_used": 1})
    got = activity(api, interval=60)
    assert got["total"] == {"dates": [ms(0), ms(60), ms(120)], "counts": [1, 1, 1]}
    assert got["active"] == {"dates": [ms(60)], "counts": [1]}


def test_reports_without_records_are_invisible(api: JsonApi) -> None:
    report(api, "w1", ms(0), {"memory_used": 1})
    report(api, "w2", ms(0), task="t2")  # no machine_stats: nothing recorded
    report(api, "w3", ms(0), {"memory_used": 0}, task="t3")  # all falsy: nothing recorded
    report(api, "w1", ms(60), {"memory_used": 1})
    got = activity(api, interval=60)
    assert got == {"total": {"dates": [ms(0)], "counts": [1]}, "active": EMPTY}


def test_range_uses_the_get_stats_rules(api: JsonApi) -> None:  # quirk Q6, Q7
    report(api, "w1", ms(9.5), {"memory_used": 1})  # outside: from_date 10.7 → from 10.000
    report(api, "w1", ms(10.5), {"memory_used": 1})  # inside, although before 10.7
    report(api, "w2", ms(30.999), {"memory_used": 1})  # inside: to_date 30.2 → ..= 30.999
    report(api, "w3", ms(31), {"memory_used": 1})  # outside
    got = activity(api, start=10.7, end=30.2, interval=10)
    assert got["total"] == {"dates": [ms(10), ms(20)], "counts": [1, 0]}


def test_history_outlives_registration(api: JsonApi, hub_server: ServerHandle) -> None:  # quirk Q18
    api.ok("workers.register", {"worker": "w1", "timeout": 5})
    report(api, "w1", ms(0), {"memory_used": 1})
    report(api, "w1", ms(60), {"memory_used": 1})
    hub_server.advance_clock(6)
    assert activity(api, interval=60)["total"] == {"dates": [ms(0)], "counts": [1]}


@pytest.mark.parametrize(("lo", "hi"), [(5, 5), (6, 5)])
def test_from_date_not_before_to_date_is_400_16(api: JsonApi, lo: int, hi: int) -> None:
    reply = api.call("workers.get_activity_report", {"from_date": lo, "to_date": hi, "interval": 1})
    assert reply.code == (400, 16)
    assert reply.meta["result_msg"] == "invalid value for fields (from_date must be less than to_date)"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"to_date": 10, "interval": 1}, "from_date"),
        ({"from_date": 0, "interval": 1}, "to_date"),
        ({"from_date": 0, "to_date": 10}, "interval"),
        ({"from_date": -1, "to_date": 10, "interval": 1}, "from_date"),
        ({"from_date": 0, "to_date": "10", "interval": 1}, "to_date"),
        ({"from_date": 0, "to_date": 10, "interval": 0}, "interval"),
        ({"from_date": 0, "to_date": 10, "interval": 1.5}, "interval"),
    ],
)
def test_validation_errors_are_400_12_naming_the_field(api: JsonApi, body: dict, field: str) -> None:
    reply = api.call("workers.get_activity_report", body)
    assert reply.code == (400, 12)
    assert field in reply.meta["result_msg"]


# --- fixed mode -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fixed() -> Iterator[ServerHandle]:
    with running_server(max_api_version="2.4", fix_quirks=True) as handle:
        yield handle


@pytest.fixture
def fixed_api(fixed: ServerHandle) -> Iterator[JsonApi]:
    fixed.reset()
    with client_for(fixed) as client:
        yield JsonApi(client)


def _fixture_data(api: JsonApi) -> None:
    report(api, "w1", ms(10), {"memory_used": 1})
    report(api, "w1", ms(130), {"memory_used": 1})
    report(api, "w2", ms(130), {"memory_used": 1}, task="t2")
    report(api, "w1", ms(250), {"memory_used": 1}, task="t1")


def test_fixed_mode_zero_fills_the_whole_range(fixed_api: JsonApi) -> None:
    _fixture_data(fixed_api)
    got = activity(fixed_api, start=0, end=299, interval=60)  # last bucket covers 240..299.999: complete
    dates = [ms(0), ms(60), ms(120), ms(180), ms(240)]
    assert got == {
        "total": {"dates": dates, "counts": [1, 0, 2, 0, 1]},
        "active": {"dates": dates, "counts": [0, 0, 1, 0, 1]},
    }


def test_fixed_mode_drops_the_last_bucket_only_when_incomplete(fixed_api: JsonApi) -> None:
    _fixture_data(fixed_api)
    got = activity(fixed_api, start=0, end=290, interval=60)  # 240..290.999 is 85% of the bucket
    assert got["total"] == {"dates": [ms(0), ms(60), ms(120), ms(180)], "counts": [1, 0, 2, 0]}


def test_fixed_mode_with_no_data_gives_zeros(fixed_api: JsonApi) -> None:
    got = activity(fixed_api, start=0, end=119, interval=60)
    assert got["total"] == {"dates": [ms(0), ms(60)], "counts": [0, 0]}


def test_fixed_mode_records_zero_values(fixed_api: JsonApi) -> None:  # quirk Q2 fixed
    report(fixed_api, "w1", ms(0), {"network_rx": 0, "memory_used": 0.0})
    [w] = get_stats(fixed_api, [{"key": "network_rx"}, {"key": "memory_used"}])
    assert {m["metric"]: m["stats"][0]["values"] for m in w["metrics"]} == {
        "network_rx": [0.0],
        "memory_used": [0.0],
    }
