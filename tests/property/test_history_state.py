"""A history's persisted form: a frozen cut stays put while writes go on, a restored history is the same
history (it answers and goes on evolving exactly as the original), and series are matched by name."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workerhub.messages import ActivityQuery, StatsItem, StatsQuery
from workerhub.persistence.format import pack, unpack
from workerhub.stats import WorkerHistory, activity_report, stats_report

from ..support import SPAN_MS as SPAN
from ..support import T0_MS as T0
from ..support import ingest, reports


def _feed(hs: dict[str, WorkerHistory], reps: list, written: float) -> None:
    for k, (w, ts, task, samples) in enumerate(reps):
        if w in hs:
            hs[w].add(ts, task, samples, written_at=written + k)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(reports(), reports(), st.integers(0, 45), st.booleans())
def test_cut_is_stable_and_restore_continues_identically(first, later, keep, drop) -> None:
    hs = ingest(first)
    if drop:  # below the horizon, partial chunks, tier-only hours: all must survive the round trip
        for h in hs.values():
            h.drop_written_before(len(first) - keep, tier_cutoff=-1)
    before = {w: pack(h.to_state()) for w, h in hs.items()}
    cuts = {w: h.freeze() for w, h in hs.items()}
    _feed(hs, later, len(first))  # writes after the cut: late reports, new buckets, new hours and days
    for h in hs.values():
        h.drop_written_before(len(first) + len(later) // 2, tier_cutoff=-1)
    for w, cut in cuts.items():
        assert pack(cut.to_state()) == before[w], "the frozen cut changed under later writes"
    restored = {w: WorkerHistory.from_state(unpack(raw)) for w, raw in before.items()}
    for h in restored.values():
        h._check()
    _feed(restored, later, len(first))
    for h in restored.values():
        h.drop_written_before(len(first) + len(later) // 2, tier_cutoff=-1)
        h._check()
    for w, h in hs.items():
        assert pack(restored[w].to_state()) == pack(h.to_state())
        assert restored[w].counts == h.counts and len(restored[w]) == len(h)


def _permuted(state: dict, order: list[int]) -> dict:
    """``state`` with its series in another order (as a process that met them in that order writes it)."""
    k = len(state["series"])
    out = dict(state, series=[state["series"][i] for i in order])
    out["chunks"] = [
        [h, w, p, ts, task, np.frombuffer(vals, "<f4").reshape(-1, k)[:, order].tobytes()]
        for h, w, p, ts, task, vals in state["chunks"]
    ]
    days = []
    for start, written, *arrays in state["days"]:
        mm = [np.frombuffer(a, "<f4").reshape(k, 2, -1)[order].tobytes() for a in arrays[:2]]
        sc = [np.frombuffer(a, "<f8").reshape(k, 2, -1)[order].tobytes() for a in arrays[2:4]]
        days.append([start, written, *mm, *sc, *arrays[4:]])
    out["days"] = days
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(reports(), st.randoms(use_true_random=False))
def test_series_are_matched_by_name_not_column_number(reps, rnd) -> None:
    hs = ingest(reps)
    loaded = {}
    for w, h in hs.items():
        state = unpack(pack(h.to_state()))
        order = list(range(len(state["series"])))
        rnd.shuffle(order)
        loaded[w] = WorkerHistory.from_state(_permuted(state, order))
        loaded[w]._check()
        assert loaded[w].counts == h.counts
    items = (StatsItem("cpu_usage", "max"), StatsItem("gpu_usage", "min"), StatsItem("memory_used", "avg"))
    for interval in (600, 3600, 7):
        lo, hi = T0 // 1000 - 3600, (T0 + SPAN) // 1000 + 3600
        q = StatsQuery(lo, hi, interval * 100, items, split_by_variant=True)
        assert stats_report(loaded, q) == stats_report(hs, q)
        aq = ActivityQuery(q.from_date, q.to_date, q.interval)
        assert activity_report(loaded.values(), aq) == activity_report(hs.values(), aq)


def test_malformed_state_is_a_value_error_naming_the_part() -> None:
    h = WorkerHistory()
    for k in range(100):
        h.add(T0 + k * 10_000, False, [("cpu_usage", "0", float(k))], written_at=k)
    state = unpack(pack(h.to_state()))
    bad = dict(state, chunks=[[*state["chunks"][0][:5], b"\x00" * 3]])
    for broken, words in [
        ({"chunks": []}, "series"),
        (bad, "values"),
        (dict(state, pending="yes"), "pending"),
        (dict(state, series=[["cpu_usage", "0"], ["cpu_usage", "0"]]), "twice"),
    ]:
        try:
            WorkerHistory.from_state(broken)
        except ValueError as exc:
            assert words in str(exc), exc
        else:
            raise AssertionError(f"accepted {words}")
