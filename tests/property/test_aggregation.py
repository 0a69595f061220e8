"""The stats queries against the brute-force reference: the pure core directly, then the real hub.

Every test draws reports (several workers, out-of-order and repeated timestamps, falsy values, lists up to
12 long, tasks absent / set / empty), then queries with random intervals (1 s .. days), ranges (fractional,
bucket-misaligned, empty) and worker subsets, pooled and split, and compares with :mod:`.reference`:
floats with ``math.isclose(rel_tol=1e-9)``, everything else (dates, counts, names, order, types) exactly.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from workerhub.actors import open_hub
from workerhub.clock import Clock
from workerhub.config import Settings
from workerhub.errors import FieldsValueError, ValidationError, WorkerStatsNotFound
from workerhub.messages import ActivityQuery, Identity, StatsItem, StatsQuery, StatusReport
from workerhub.stats import (
    ActivityJob,
    StatsJob,
    WorkerHistory,
    activity_report,
    flatten_machine_stats,
    metric_keys,
    stats_report,
)
from workerhub.stats.jobs import MAX_BUCKETS

from . import reference as ref
from .compare import WALL_START, assert_same, records_of
from .strategies import (
    SECOND,
    Report,
    date_range,
    intervals,
    machine_stats,
    reports,
    stat_items,
    values,
    worker_subsets,
)

# --- query drawing ---------------------------------------------------------------------------------------


@st.composite
def stats_queries(draw: st.DrawFn, base_ms: int, stamps: list[int]) -> StatsQuery:
    from_date, to_date = draw(date_range(base_ms, stamps))
    # a series spans at most MAX_BUCKETS buckets (more is refused, as ES refuses it): stay within it
    smallest = (int(to_date) - int(from_date) + 1) // (MAX_BUCKETS - 2) + 1
    return StatsQuery(
        from_date=from_date,
        to_date=to_date,
        interval=max(smallest, draw(intervals)),
        items=tuple(StatsItem(key, agg) for key, agg in draw(stat_items)),
        worker_ids=tuple(draw(worker_subsets)),
        split_by_variant=draw(st.booleans()),
    )


MAX_TEST_BUCKETS = 20_000
"""Activity series are zero-filled; the interval is raised so one holds at most about this many buckets."""


@st.composite
def activity_queries(draw: st.DrawFn, base_ms: int, stamps: list[int]) -> ActivityQuery:
    from_date, to_date = draw(date_range(base_ms, stamps))
    data_span_s = (max(stamps) - min(stamps)) // SECOND if stamps else 0
    range_span_s = int(to_date) - int(from_date) + 1
    smallest = max(data_span_s, range_span_s) // MAX_TEST_BUCKETS + 1
    return ActivityQuery(from_date=from_date, to_date=to_date, interval=max(smallest, draw(intervals)))


def expected_stats(records: list[dict[str, Any]], q: StatsQuery) -> list[dict[str, Any]]:
    items = [(item.key, item.aggregation) for item in q.items]
    return ref.get_stats(records, q.from_date, q.to_date, q.interval, items, list(q.worker_ids), q.split_by_variant)


def expected_activity(records: list[dict[str, Any]], q: ActivityQuery, fixed: bool) -> dict[str, Any]:
    return ref.get_activity_report(records, q.from_date, q.to_date, q.interval, fixed)


# --- flattening ------------------------------------------------------------------------------------------


@given(machine_stats(), st.booleans())
def test_flatten_matches_reference(stats: dict[str, Any] | None, record_zero: bool) -> None:
    actual = flatten_machine_stats(stats, record_zero=record_zero)
    assert sorted(actual) == sorted(ref.flatten(stats, record_zero))
    assert all(type(value) is float for _, _, value in actual)


_WRONG = st.one_of(st.text(max_size=3), st.dictionaries(st.just("x"), st.integers(), max_size=1))


@st.composite
def invalid_machine_stats(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    good = draw(machine_stats()) or {}
    field = draw(st.sampled_from(ref.LIST_FIELDS + ref.SCALAR_FIELDS))
    if field in ref.LIST_FIELDS:
        bad = draw(
            st.one_of(
                _WRONG,
                st.integers(1, 9),  # a scalar where a list belongs
                st.lists(values, max_size=3).flatmap(
                    lambda xs: st.sampled_from(["1", None, [1]]).map(lambda junk: [*xs, junk])
                ),
            )
        )
    else:
        bad = draw(st.one_of(_WRONG, st.lists(values, min_size=1, max_size=2)))
    return {**good, field: bad}, field


@given(invalid_machine_stats(), st.booleans())
def test_flatten_rejects_wrong_types_naming_the_field(case: tuple[dict[str, Any], str], record_zero: bool) -> None:
    stats, field = case
    with pytest.raises(ref.Invalid) as expected:
        ref.flatten(stats, record_zero)
    assert expected.value.field == field
    with pytest.raises(ValidationError) as actual:
        flatten_machine_stats(stats, record_zero=record_zero)
    assert field in str(actual.value)


# --- the pure core ---------------------------------------------------------------------------------------


def build_histories(rs: list[Report], record_zero: bool = False) -> dict[str, WorkerHistory]:
    histories: dict[str, WorkerHistory] = {}
    for r in rs:
        h = histories.setdefault(r.worker, WorkerHistory())
        h.add(r.timestamp, r.task is not None, flatten_machine_stats(r.machine_stats, record_zero=record_zero), 0.0)
        h._check()
    return histories


def selected(histories: dict[str, WorkerHistory], worker_ids: tuple[str, ...]) -> dict[str, WorkerHistory]:
    if not worker_ids:
        return histories
    return {w: histories[w] for w in dict.fromkeys(worker_ids) if w in histories}


@given(st.data(), reports(), st.booleans())
def test_core_queries_match_reference(data: st.DataObject, drawn: tuple[int, list[Report]], record_zero: bool) -> None:
    base, rs = drawn
    histories = build_histories(rs, record_zero)
    records = records_of(rs, record_zero)
    assert sum(len(h) for h in histories.values()) == sum(1 for r in rs if ref.flatten(r.machine_stats, record_zero))

    for _ in range(3):
        q = data.draw(stats_queries(base, [r.timestamp for r in rs]))
        assert_same(stats_report(selected(histories, q.worker_ids), q), expected_stats(records, q))
        a = data.draw(activity_queries(base, [r.timestamp for r in rs]))
        for fixed in (False, True):
            assert_same(activity_report(histories.values(), a, fixed=fixed), expected_activity(records, a, fixed))

    subset = data.draw(worker_subsets)
    expected_keys = ref.get_metric_keys(records, subset)
    assert_same(metric_keys(selected(histories, tuple(subset)).values()), expected_keys or [])


@given(st.data(), reports(), st.integers(1, 50))
def test_queries_answered_in_slices_equal_one_pass(
    data: st.DataObject, drawn: tuple[int, list[Report]], cost: int
) -> None:
    """A job split into slices of workers (any slice budget) answers exactly as one pass over all of them."""
    base, rs = drawn
    histories = build_histories(rs)
    q = data.draw(stats_queries(base, [r.timestamp for r in rs]))
    chosen = selected(histories, q.worker_ids)
    sliced = StatsJob(chosen, q, slice_cost=cost)
    assert sliced.run() == StatsJob(chosen, q, slice_cost=10**12).run()
    a = data.draw(activity_queries(base, [r.timestamp for r in rs]))
    for fixed in (False, True):
        one = ActivityJob(histories.values(), a, fixed=fixed, slice_cost=10**12).run()
        assert ActivityJob(histories.values(), a, fixed=fixed, slice_cost=cost).run() == one


@given(st.data(), reports())
def test_retention_keeps_every_record_written_after_the_cutoff(
    data: st.DataObject, drawn: tuple[int, list[Report]]
) -> None:
    """drop_written_before never loses a record written at or after the cutoff, nor invents one."""
    _base, rs = drawn
    history = WorkerHistory()
    written: list[tuple[float, list[dict[str, Any]]]] = []
    for r in rs:
        at = float(data.draw(st.integers(0, 10)))
        samples = flatten_machine_stats(r.machine_stats)
        history.add(r.timestamp, r.task is not None, samples, at)
        written.append((at, ref.make_records("w", r.timestamp, r.task, r.machine_stats)))
    cutoff = float(data.draw(st.integers(0, 11)))
    rows_before = len(history)
    dropped = history.drop_written_before(cutoff)
    history._check()
    assert len(history) == rows_before - dropped

    def key(r: dict[str, Any]) -> tuple[int, str, str, float]:
        return (r["timestamp"], r["metric"], r["variant"], r["value"])

    everything = Counter(key(r) for _, recs in written for r in recs)
    must_keep = Counter(key(r) for at, recs in written if at >= cutoff for r in recs)
    kept: Counter[tuple[int, str, str, float]] = Counter()
    for (metric, variant), (ts, vals) in history.series(
        -(2**62), 2**62, set(ref.LIST_FIELDS + ref.SCALAR_FIELDS)
    ).items():
        for t, v in zip(ts.tolist(), vals.tolist()):
            kept[(t, metric, variant, v)] += 1
    assert not must_keep - kept, "a record written after the cutoff was dropped"
    assert not kept - everything, "retention invented a record"
    # counts also cover records whose raw rows went but whose UTC day of rollups stays (docs/storage.md)
    assert sum(kept.values()) <= sum(history.counts.values()) <= sum(everything.values())
    if history.empty:
        assert not history.counts


# --- the real hub, in process on trio ----------------------------------------------------------------------



def identity(company: str, user: str) -> Identity:
    return Identity(company, user)


def run_hub(rs: list[Report], hub_settings: Settings, queries: Any) -> Any:
    """Send ``rs`` as status_reports to a fresh hub on a MockClock, then return ``queries(hub)``."""

    async def main() -> Any:
        async with open_hub(hub_settings, clock=Clock(wall_at_start=WALL_START)) as hub:
            for r in rs:
                samples = flatten_machine_stats(r.machine_stats, record_zero=hub_settings.fix_quirks)
                report = StatusReport(worker=r.worker, timestamp=r.timestamp, task=r.task, samples=samples)
                await hub.status_report(report, identity=identity(r.company, r.user))
            for *_, history in hub.histories():
                history._check()
            return await queries(hub)

    return trio.run(main, clock=trio.testing.MockClock())


COMPANIES = ("c1", "c2")


def check_hub(data: st.DataObject, base: int, rs: list[Report], fixed: bool) -> None:
    stats_qs = [data.draw(stats_queries(base, [r.timestamp for r in rs])) for _ in range(3)]
    activity_qs = [data.draw(activity_queries(base, [r.timestamp for r in rs])) for _ in range(2)]
    key_subsets = [tuple(data.draw(worker_subsets)) for _ in range(2)]
    bad_range = data.draw(st.floats(0, 2e9, allow_nan=False))

    async def queries(hub: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for company in COMPANIES + ("nobody",):
            who = identity(company, "u9")  # any user of the company sees all of its stats
            out[company] = {
                "stats": [await hub.get_stats(q, identity=who) for q in stats_qs],
                "activity": [await hub.get_activity_report(q, identity=who) for q in activity_qs],
                "keys": [],
            }
            for subset in key_subsets:
                try:
                    out[company]["keys"].append(hub.get_metric_keys(subset, identity=who))
                except WorkerStatsNotFound:
                    out[company]["keys"].append(None)
        for bad in (
            ActivityQuery(bad_range, bad_range, 60),
            StatsQuery(bad_range + 1, bad_range, 60, (StatsItem("cpu_usage"),)),
        ):
            with pytest.raises(FieldsValueError):
                await (hub.get_activity_report if isinstance(bad, ActivityQuery) else hub.get_stats)(bad)
        return out

    answers = run_hub(rs, Settings(fix_quirks=fixed), queries)
    for company in COMPANIES + ("nobody",):
        records = records_of([r for r in rs if r.company == company], record_zero=fixed)
        got = answers[company]
        for q, actual in zip(stats_qs, got["stats"]):
            assert_same(actual, expected_stats(records, q))
        for q, actual in zip(activity_qs, got["activity"]):
            assert_same(actual, expected_activity(records, q, fixed))
        for subset, actual in zip(key_subsets, got["keys"]):
            assert_same(actual, ref.get_metric_keys(records, list(subset)))


@given(st.data(), reports(companies=COMPANIES, users=("u1", "u2")))
def test_hub_matches_reference(data: st.DataObject, drawn: tuple[int, list[Report]]) -> None:
    base, rs = drawn
    check_hub(data, base, rs, fixed=False)


@given(st.data(), reports(companies=COMPANIES, users=("u1", "u2")))
@settings(max_examples=max(10, settings().max_examples // 2))
def test_hub_fixed_mode_matches_reference(data: st.DataObject, drawn: tuple[int, list[Report]]) -> None:
    """fix_quirks: scalar zeros are recorded and the activity report is zero-filled over the range."""
    base, rs = drawn
    check_hub(data, base, rs, fixed=True)
