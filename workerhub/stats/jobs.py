"""A get_stats or get_activity_report as a job: its budget checked up front, then evaluated in slices.

A large query must neither build an answer of unbounded size nor hold the event loop for seconds. So a
job first sizes its answer (workers x output series x buckets, from each history's extent and layout,
before reading any row) and refuses one over ``max_values`` or over :data:`MAX_BUCKETS` buckets per
series with 400/16 naming ``interval`` and the smallest interval that would be served. Then
:meth:`StatsJob.steps` evaluates the workers in slices of bounded cost, one slice per ``next()``; the
caller (the hub, on trio) yields to other tasks between slices. Workers are independent in both answers,
so the slices' partials merge exactly: rows ordered once at the end, activity counts summed per bucket.

Each worker is read in one slice, synchronously, so its part of the answer is one consistent instant of
its history; workers in different slices may be read a few milliseconds apart (as an Elasticsearch
query sees shards refreshed at slightly different times). Nothing here imports trio: the pure core
stays testable without an event loop.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import FieldsValueError
from ..messages import ActivityQuery, StatsQuery
from .columns import TIER_MS
from .history import WorkerHistory
from .query import clamp_range, fleet_activity
from .render import WorkerRow, order_rows, query_keys, stats_rows

__all__ = ["MAX_BUCKETS", "SLICE_COST", "ActivityJob", "StatsJob", "query_range"]

MAX_BUCKETS = 65_535
"""Most buckets one series may span, as Elasticsearch's ``search.max_buckets`` default refuses more. An
activity series is zero-filled, so without it a tiny interval over years would allocate gigabytes."""

SLICE_COST = 400_000
"""Work per slice, in output cells plus raw rows read: sized so one slice takes tens of milliseconds
(bench/query_slices.py: ~30 ms for the 60 s query), well under the 100 ms other requests may wait."""

_INT64_MAX = 2**63 - 1

_NARROW_ABOVE = 10_000
"""An activity report narrows its range to the data (:func:`~.query.clamp_range`) above this many buckets."""


def query_range(from_date: float, to_date: float) -> tuple[int, int]:
    """The inclusive ms range a ``[from_date, to_date]`` query in seconds selects (quirk Q6).

    Both ends are clamped to int64, the type of stored timestamps.
    """
    return min(int(from_date) * 1000, _INT64_MAX), min(int(to_date) * 1000 + 999, _INT64_MAX)


def _buckets(lo: int, hi: int, step: int) -> int:
    """Epoch-aligned buckets of ``step`` ms that ``[lo, hi]`` touches."""
    return hi // step - lo // step + 1


def smallest_interval(lo: int, hi: int, per_bucket: int, max_values: int | None) -> int | None:
    """The smallest interval (s) at which ``[lo, hi]`` spans at most :data:`MAX_BUCKETS` buckets and
    ``per_bucket`` values per bucket stay within ``max_values``; None when no interval does."""
    cap = MAX_BUCKETS if max_values is None else min(MAX_BUCKETS, max_values // max(per_bucket, 1))
    if cap < 2:
        return None
    span = hi - lo + 1
    guaranteed = max(1, -(-span // (1000 * (cap - 1))))  # ≤ cap - 1 whole steps, plus one for alignment
    interval = max(1, -(-span // (1000 * cap)))
    while interval < guaranteed and _buckets(lo, hi, interval * 1000) > cap:
        interval += 1
    return interval


def _refuse(
    interval: int, why: str, lo: int, hi: int, per_bucket: int, max_values: int | None
) -> FieldsValueError:
    best = smallest_interval(lo, hi, per_bucket, max_values)
    hint = (
        f"the smallest interval served for this range is {best} s"
        if best is not None
        else "no interval is small enough: ask for fewer workers or items"
    )
    return FieldsValueError(f"interval {interval} s is too small: {why}; {hint}", field="interval")


def _slices(costs: Sequence[int], budget: int) -> list[range]:
    """Consecutive index ranges whose costs add up to about ``budget`` each (at least one item each)."""
    out: list[range] = []
    start = acc = 0
    for k, c in enumerate(costs):
        if acc and acc + c > budget:
            out.append(range(start, k))
            start, acc = k, 0
        acc += c
    if start < len(costs):
        out.append(range(start, len(costs)))
    return out


class StatsJob:
    """One get_stats: budget checked at construction, answer built by :meth:`steps`, read by :meth:`result`.

    ``max_values`` caps workers x output series x buckets (None: only the per-series bucket cap).
    """

    def __init__(
        self,
        histories: Mapping[str, WorkerHistory],
        query: StatsQuery,
        *,
        max_values: int | None = None,
        slice_cost: int | None = None,
    ) -> None:
        self._lo, self._hi = query_range(query.from_date, query.to_date)
        self._step = query.interval * 1000
        self._split = query.split_by_variant
        self._aggregations: dict[str, list[str]] = {}
        for item in query.items:
            wanted = self._aggregations.setdefault(item.key, [])
            if item.aggregation not in wanted:
                wanted.append(item.aggregation)
        self._rows: list[WorkerRow] = []
        # only the workers that hold a requested series take part (and count against the budget)
        hs = list(histories.values())
        keys = query_keys(hs, self._aggregations)
        has = {id(h.layout): any(h.layout.get(k) is not None for k in keys) for h in hs}
        self._items = [(w, h) for w, h in histories.items() if has[id(h.layout)]]
        self._slices: list[range] = []
        if not self._items:
            return
        series = len(keys) if self._split else len({m for m, _v in keys})
        lo, hi = clamp_range((h for _w, h in self._items), self._lo, self._hi)
        # every slice evaluates the fleet's narrowed range: narrowing keeps answers (query.clamp_range), and
        # once is enough (it reads every worker)
        self._lo, self._hi = lo, hi
        buckets = _buckets(lo, hi, self._step)
        per_bucket = len(self._items) * series
        if buckets > MAX_BUCKETS:
            why = f"{buckets} buckets per series, at most {MAX_BUCKETS}"
            raise _refuse(query.interval, why, lo, hi, per_bucket, max_values)
        if max_values is not None and per_bucket * buckets > max_values:
            why = (
                f"{len(self._items)} workers x {series} series x {buckets} buckets = {per_bucket * buckets} "
                f"values, at most {max_values} (max_query_values)"
            )
            raise _refuse(query.interval, why, lo, hi, per_bucket, max_values)
        # Cost: output cells, plus the raw rows read when no tier answers the interval (then every row of
        # the range is read; otherwise only the edges are, and the dense path batches many workers).
        raw = self._step % TIER_MS[0] != 0
        costs = [series * (buckets + (len(h) if raw else 0)) for _w, h in self._items]
        self._slices = _slices(costs, SLICE_COST if slice_cost is None else slice_cost)

    def steps(self) -> Iterator[None]:
        """Evaluate one slice of workers per ``next()``."""
        for sl in self._slices:
            part = self._items[sl.start : sl.stop]
            self._rows += stats_rows(
                part, self._lo, self._hi, self._step, self._aggregations, self._split, clamped=True
            )
            yield

    def result(self) -> list[dict[str, Any]]:
        """The ``workers`` list (after every step ran)."""
        return order_rows(self._rows)

    def run(self) -> list[dict[str, Any]]:
        """Every step at once (callers that need not yield)."""
        for _ in self.steps():
            pass
        return self.result()


class ActivityJob:
    """One get_activity_report, in slices as :class:`StatsJob` (see :func:`~.aggregate.activity_report`)."""

    def __init__(
        self,
        histories: Iterable[WorkerHistory],
        query: ActivityQuery,
        *,
        fixed: bool = False,
        slice_cost: int | None = None,
    ) -> None:
        self._query = query
        self._fixed = fixed
        self._lo, self._hi = query_range(query.from_date, query.to_date)
        self._step = query.interval * 1000
        self._hs = list(histories)
        if fixed:  # the answer spans the whole range: refuse before any work
            n = _buckets(self._lo, self._hi, self._step)
            if n > MAX_BUCKETS:
                why = f"{n} buckets, at most {MAX_BUCKETS}"
                raise _refuse(query.interval, why, self._lo, self._hi, 1, None)
        budget = SLICE_COST if slice_cost is None else slice_cost
        # Cost per worker: its raw rows when no tier answers the interval (all are read); otherwise the
        # buckets it spans, at most (tier slots and two raw edges are read, or dense flags set per bucket).
        # Narrowed once for every slice, and only when the grid is large: narrowing keeps answers and
        # bounds a wide range's grid, but reads every worker (a fifth of a 10,000-worker, 24 h report).
        self._clo, self._chi = self._lo, self._hi
        if _buckets(self._lo, self._hi, self._step) > _NARROW_ABOVE:
            self._clo, self._chi = clamp_range(self._hs, self._lo, self._hi)
        if self._step % TIER_MS[0]:
            costs = [len(h) + 1 for h in self._hs]
        else:
            buckets = _buckets(self._clo, self._chi, self._step)
            costs = [min(len(h), buckets) + 1 for h in self._hs]
        self._slices = _slices(costs, budget)
        self._parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def steps(self) -> Iterator[None]:
        for sl in self._slices:
            part = self._hs[sl.start : sl.stop]
            self._parts.append(fleet_activity(part, self._clo, self._chi, self._step, clamped=True))
            yield

    def result(self) -> dict[str, dict[str, list[int]]]:
        keys, total, active = _merge_counts(self._parts)
        q, step = self._query, self._step
        if self._fixed:
            first, last = (self._lo // step) * step, (self._hi // step) * step
            if last > (q.to_date - 0.9 * q.interval) * 1000:
                last -= step
            span: tuple[int, int] | None = (first, last)
        else:
            span = None
        return {
            "total": self._series(keys, total, span),
            "active": self._series(keys, active, span),
        }

    def run(self) -> dict[str, dict[str, list[int]]]:
        for _ in self.steps():
            pass
        return self.result()

    def _series(
        self, keys: np.ndarray, counts: np.ndarray, span: tuple[int, int] | None
    ) -> dict[str, list[int]]:
        step = self._step
        nonzero = np.flatnonzero(counts)
        if span is None:
            if not len(nonzero):
                return {"dates": [], "counts": []}
            # Upstream's incomplete-bucket check compares ms with seconds: the last bucket always goes (Q3).
            first, last = int(keys[nonzero[0]]), int(keys[nonzero[-1]]) - step
        else:
            first, last = span
        if last < first:
            return {"dates": [], "counts": []}
        n = (last - first) // step + 1
        if n > MAX_BUCKETS:
            raise _refuse(self._query.interval, f"{n} buckets, at most {MAX_BUCKETS}", first, last, 1, None)
        dates = np.arange(first, last + step, step, dtype=np.int64)
        filled = np.zeros(len(dates), np.int64)
        inside = (keys >= first) & (keys <= last)
        filled[(keys[inside] - first) // step] = counts[inside]
        return {"dates": dates.tolist(), "counts": filled.tolist()}


def _merge_counts(
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-bucket worker counts of disjoint worker slices, summed (bucket keys ascending)."""
    if len(parts) == 1:
        return parts[0]
    if not parts:
        e = np.empty(0, np.int64)
        return e, e, e
    keys, inv = np.unique(np.concatenate([p[0] for p in parts]), return_inverse=True)
    total = np.bincount(inv, np.concatenate([p[1] for p in parts]), len(keys)).astype(np.int64)
    active = np.bincount(inv, np.concatenate([p[2] for p in parts]), len(keys)).astype(np.int64)
    return keys, total, active
