"""Tiered storage: every answer (tier buckets, raw edges, pending bucket) equals a brute-force reference.

The reference here is deliberately naive: a flat list of records, float32-rounded values (what the store
keeps, as upstream's ES float fields do), one Python loop per query. Reports are random, out of order,
spread over several days so both tiers, day boundaries, pending buckets and late merges are exercised;
intervals are random and are or are not multiples of the tier sizes; ranges have partial edge buckets.
``_check()`` runs after every mutation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workerhub.messages import ActivityQuery, StatsItem, StatsQuery
from workerhub.stats import WorkerHistory, activity_report, stats_report
from workerhub.stats.aggregate import MAX_BUCKETS
from workerhub.stats.history import HOUR_MS
from workerhub.stats.state import FrozenHistory

from ..support import SPAN_MS as SPAN
from ..support import T0_MS as T0
from ..support import VALUES, ingest, reports


@st.composite
def queries(draw: st.DrawFn) -> tuple[float, float, int]:
    interval = draw(st.sampled_from([1, 7, 60, 600, 1200, 1800, 3600, 7200, 86_400, 900, 5400]))
    a = T0 // 1000 + draw(st.integers(-4000, SPAN // 1000 + 4000))
    # the activity report refuses more than MAX_BUCKETS buckets (400): stay within it
    b = a + draw(st.integers(1, min(SPAN // 1000 + 8000, (MAX_BUCKETS - 2) * interval)))
    frac = draw(st.sampled_from([0.0, 0.5, 0.999]))
    return a + frac, b + frac, interval


def f32(x: float) -> float:
    return float(np.float32(x))


def ref_stats(reps: list, query: StatsQuery) -> list[dict]:
    lo, hi = int(query.from_date) * 1000, int(query.to_date) * 1000 + 999
    step = query.interval * 1000
    wanted: dict[str, list[str]] = {}
    for item in query.items:
        if item.aggregation not in wanted.setdefault(item.key, []):
            wanted[item.key].append(item.aggregation)
    cells: dict[str, dict[tuple[str, str | None], dict[int, list[float]]]] = {}
    for w, ts, _task, samples in reps:
        if not lo <= ts <= hi:
            continue
        for metric, variant, value in samples:
            if metric in wanted:
                key = (metric, variant if query.split_by_variant else None)
                cells.setdefault(w, {}).setdefault(key, {}).setdefault(ts // step * step, []).append(f32(value))
    out = []
    for w, series in cells.items():
        entries = []
        per_metric: dict[str, int] = {}
        for (metric, variant), buckets in series.items():
            n = sum(len(v) for v in buckets.values())
            per_metric[metric] = per_metric.get(metric, 0) + n
            dates = sorted(buckets)
            stats = []
            for agg in wanted[metric]:
                fn = {"avg": lambda v: math.fsum(v) / len(v), "min": min, "max": max}[agg]
                stats.append({"aggregation": agg, "values": [fn(buckets[d]) for d in dates]})
            entry = {"metric": metric}
            if variant is not None:
                entry["variant"] = variant
            entry.update(dates=dates, stats=stats)
            entries.append((n, metric, variant or "", entry))
        entries.sort(key=lambda e: (-per_metric[e[1]], e[1], -e[0], e[2]))
        out.append((sum(per_metric.values()), w, [e[3] for e in entries]))
    out.sort(key=lambda x: (-x[0], x[1]))
    return [{"worker": w, "metrics": m} for _, w, m in out]


def ref_activity(reps: list, query: ActivityQuery) -> dict:
    lo, hi = int(query.from_date) * 1000, int(query.to_date) * 1000 + 999
    step = query.interval * 1000
    total: dict[int, set] = {}
    active: dict[int, set] = {}
    for w, ts, task, _samples in reps:
        if lo <= ts <= hi:
            total.setdefault(ts // step * step, set()).add(w)
            if task:
                active.setdefault(ts // step * step, set()).add(w)

    def series(b: dict[int, set]) -> dict:
        if not b:
            return {"dates": [], "counts": []}
        dates = list(range(min(b), max(b), step))  # the last non-empty bucket is always dropped (Q3)
        return {"dates": dates, "counts": [len(b.get(d, ())) for d in dates]}

    return {"total": series(total), "active": series(active)}


def assert_same(got: list[dict], want: list[dict]) -> None:
    assert [w["worker"] for w in got] == [w["worker"] for w in want]
    for gw, ww in zip(got, want):
        assert len(gw["metrics"]) == len(ww["metrics"]), (gw, ww)
        for gm, wm in zip(gw["metrics"], ww["metrics"]):
            assert (gm["metric"], gm.get("variant"), gm["dates"]) == (wm["metric"], wm.get("variant"), wm["dates"])
            for gs, ws in zip(gm["stats"], wm["stats"], strict=True):
                assert gs["aggregation"] == ws["aggregation"]
                if gs["aggregation"] == "avg":
                    assert np.allclose(gs["values"], ws["values"], rtol=1e-9, atol=1e-9), (gs, ws)
                else:  # min and max are exact: the stored float32 values themselves
                    assert gs["values"] == ws["values"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(reports(), st.lists(queries(), min_size=1, max_size=4), st.booleans(), st.sampled_from(["avg", "min", "max"]))
def test_stats_equal_reference(reps, qs, split, agg) -> None:
    hs = ingest(reps)
    for a, b, interval in qs:
        items = (StatsItem("cpu_usage", agg), StatsItem("memory_used", "avg"), StatsItem("cpu_usage", "max"))
        query = StatsQuery(a, b, interval, items, split_by_variant=split)
        assert_same(stats_report(hs, query), ref_stats(reps, query))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(reports(), st.lists(queries(), min_size=1, max_size=4))
def test_activity_equal_reference(reps, qs) -> None:
    hs = ingest(reps)
    for a, b, interval in qs:
        query = ActivityQuery(a, b, interval)
        assert activity_report(hs.values(), query) == ref_activity(reps, query)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(reports(), st.lists(queries(), min_size=1, max_size=4), st.integers(0, 45))
def test_raw_retention_keeps_exact_answers_above_the_horizon(reps, qs, keep) -> None:
    """Drop raw chunks written before a cutoff: hours above the horizon stay exact; below it, tiers answer
    at tier resolution, and the counts never change while the tiers are retained."""
    hs = ingest(reps)
    counts_before = {w: dict(h.counts) for w, h in hs.items()}
    cutoff = len(reps) - keep
    for h in hs.values():
        h.drop_written_before(cutoff, tier_cutoff=-1)
        h._check()
    assert {w: dict(h.counts) for w, h in hs.items()} == counts_before
    for a, b, interval in qs:
        horizon = max(h._horizon for h in hs.values())
        lo = max(int(a) * 1000, horizon)
        lo_s = -(-lo // 1000)
        if lo_s >= b:
            continue
        query = StatsQuery(lo_s, b, interval, (StatsItem("cpu_usage", "min"), StatsItem("gpu_usage", "avg")))
        assert_same(stats_report(hs, query), ref_stats(reps, query))
        # Tier-only hours at the 10 min tier's resolution: whole-day queries at 1 h see every record.
        day_q = StatsQuery(T0 // 1000, (T0 + SPAN) // 1000 + 86_400, 86_400, (StatsItem("cpu_usage", "max"),))
        assert_same(stats_report(hs, day_q), ref_stats(reps, day_q))


@settings(max_examples=60, deadline=None)
@given(reports())
def test_full_retention_drop_empties(reps) -> None:
    hs = ingest(reps)
    for h in hs.values():
        h.drop_written_before(10**9)
        h._check()
        assert h.empty and len(h) == 0 and not h.counts


def test_late_report_updates_every_tier() -> None:
    h = WorkerHistory()
    base = T0 + 5 * HOUR_MS
    for k in range(200):
        h.add(base + k * 10_000, False, [("cpu_usage", "0", float(k))], written_at=k)
        h._check()
    h.add(base + 5_000, True, [("cpu_usage", "0", -3.0)], written_at=300)  # into a closed 10 min bucket
    h._check()
    q = StatsQuery(base // 1000, (base + 2 * HOUR_MS) // 1000, 3600, (StatsItem("cpu_usage", "min"),))
    got = stats_report({"w": h}, q)
    assert got[0]["metrics"][0]["stats"][0]["values"][0] == -3.0


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(reports(), reports(), st.integers(0, 45), st.sampled_from([3600, 86_400, 600]))
def test_reports_after_a_raw_drop_stay_consistent(first, later, keep, interval) -> None:
    """Reports into hours whose raw rows were dropped (partial chunks, below the horizon) still reach every
    tier: a whole-range query at a tier multiple sees every record ever added."""
    hs = ingest(first)
    cutoff = len(first) - keep
    for h in hs.values():
        h.drop_written_before(cutoff, tier_cutoff=-1)
        h._check()
    for k, (w, ts, task, samples) in enumerate(later):
        h = hs.setdefault(w, WorkerHistory())
        h.add(ts, task, samples, written_at=len(first) + k)
        h._check()
    every = first + later
    items = (StatsItem("cpu_usage", "min"), StatsItem("cpu_usage", "avg"))
    q = StatsQuery((T0 - 86_400_000) // 1000, (T0 + SPAN) // 1000 + 86_400, interval, items)
    assert_same(stats_report(hs, q), ref_stats(every, q))
    aq = ActivityQuery((T0 - 86_400_000) // 1000, (T0 + SPAN) // 1000 + 86_400, interval)
    assert activity_report(hs.values(), aq) == ref_activity(every, aq)


# --- reads never write (issue 9 item 1) ---------------------------------------------------------------------

WIDE_SAMPLE = st.tuples(
    st.sampled_from(["cpu_usage", "gpu_usage"]), st.sampled_from([str(i) for i in range(6)]), VALUES
)


def _arrays(cut: FrozenHistory) -> list[np.ndarray]:
    """Every array a frozen cut shares with its history (the chunks' and days' own arrays)."""
    cut._sort()
    out: list[np.ndarray] = []
    for _hour, (ts, task, vals, _n, _written, _partial) in cut._chunks:
        out += [ts, task, vals]
    for _start, (mm, sc, rc, _written) in cut._days:
        out += [*mm, *sc, *rc]
    return out


def _fingerprint(cut: FrozenHistory) -> list[tuple[tuple[int, ...], str, bytes]]:
    return [(a.shape, a.dtype.str, a.tobytes()) for a in _arrays(cut)]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.integers(2, 30))
def test_interleaved_writes_new_series_cuts_and_reads_never_change_a_cut(data: st.DataObject, n: int) -> None:
    """Reports (whose series grow over time), cuts and queries of every series, interleaved: every cut's
    arrays stay byte-identical and read-only, and every answer equals the reference."""
    h = WorkerHistory()
    reps: list = []
    cuts: list[tuple[FrozenHistory, list]] = []
    t = T0 + data.draw(st.integers(0, SPAN // 2))
    for k in range(n):
        op = data.draw(st.sampled_from(["add", "add", "add", "cut", "query"]))
        if op == "add":
            t = min(
                max(T0, t + data.draw(st.sampled_from([10_000, 600_000, 20 * 3_600_000, -5 * 3_600_000]))), T0 + SPAN
            )
            samples = data.draw(st.lists(WIDE_SAMPLE, min_size=1, max_size=4, unique_by=lambda s: (s[0], s[1])))
            task = data.draw(st.booleans())
            h.add(t, task, samples, written_at=float(k))
            reps.append(("a", t, task, samples))
        elif op == "cut":
            cut = h.freeze()
            for a in _arrays(cut):
                assert not a.flags.writeable, "a cut shares a writable array"
            cuts.append((cut, _fingerprint(cut)))
        else:
            a, b, interval = data.draw(queries())
            split = data.draw(st.booleans())
            q = StatsQuery(a, b, interval, (StatsItem("cpu_usage", "max"), StatsItem("gpu_usage", "min")), (), split)
            assert_same(stats_report({"a": h}, q), ref_stats(reps, q))
            aq = ActivityQuery(a, b, interval)
            assert activity_report([h], aq) == ref_activity(reps, aq)
            h.series(T0, T0 + SPAN, {"cpu_usage", "gpu_usage"})
        h._check()
        for cut, before in cuts:
            assert _fingerprint(cut) == before, "a read or write changed a frozen cut"


def test_query_of_a_new_series_over_frozen_days_changes_nothing() -> None:
    """The reproduced data-loss bug: a worker gains a core; a chart of cpu_usage over its older, frozen
    (narrower) days and chunks must read the new core as absent, not widen them under the snapshot."""
    hs = {w: WorkerHistory() for w in ("old", "new")}
    for k in range(3 * 24 * 6):  # three days, one report per 10 min: tiers and raw chunks
        for h in hs.values():
            h.add(T0 + k * 600_000, True, [("cpu_usage", "0", float(k))], written_at=0.0)
    cuts = {w: h.freeze() for w, h in hs.items()}
    before = {w: _fingerprint(c) for w, c in cuts.items()}
    later = T0 + 3 * 86_400_000
    hs["new"].add(later, True, [("cpu_usage", "0", 1.0), ("cpu_usage", "1", 2.0)], written_at=1.0)
    lo, hi = T0 // 1000, later // 1000 + 1
    for interval, split in ((60, True), (600, True), (3600, False), (86_400, True)):
        q = StatsQuery(lo, hi, interval, (StatsItem("cpu_usage", "max"),), (), split)
        stats_report(hs, q)
        activity_report(hs.values(), ActivityQuery(lo, hi, interval))
    for w, cut in cuts.items():
        assert _fingerprint(cut) == before[w], f"{w}: the query changed the frozen cut"
        for a in _arrays(cut):
            with pytest.raises(ValueError, match="read-only"):
                a.flat[0] = a.flat[0]
    for h in hs.values():
        h._check()
