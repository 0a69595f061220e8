"""Bucket aggregation and the three stats queries, as clearml-server 2.4 answers them on Elasticsearch.

Buckets are epoch-aligned: a record at ``ts`` ms falls in the bucket starting at
``floor(ts / step) * step`` with ``step = interval * 1000`` (spec §7, quirk Q7). A query range
``[from_date, to_date]`` in seconds covers ``int(from_date) * 1000 ..= int(to_date) * 1000 + 999`` ms (Q6).

Each worker's history yields partial aggregates (:class:`Buckets`: per bucket min, max, sum, count);
:func:`merge_buckets` combines partials (variants pooled, or several sources of one series), and the
``*_report`` functions turn merged partials into the wire response, ordered as ES terms aggregations order
them: by record count descending, then by name (Q9), never truncated to 10 (Q8, a deliberate deviation).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import FieldsValueError
from ..messages import ActivityQuery, StatsQuery
from .flatten import category_of
from .history import WorkerHistory
from .query import fleet_activity, render_stats

__all__ = [
    "Buckets",
    "MAX_BUCKETS",
    "activity_report",
    "bucketize",
    "merge_buckets",
    "metric_keys",
    "query_range",
    "stats_report",
]


@dataclass(frozen=True, slots=True)
class Buckets:
    """Partial aggregates of one series: parallel arrays, ``keys`` ascending (bucket start, epoch ms)."""

    keys: np.ndarray
    mins: np.ndarray
    maxs: np.ndarray
    sums: np.ndarray
    counts: np.ndarray

    @property
    def total(self) -> int:
        return int(self.counts.sum())


MAX_BUCKETS = 100_000
"""Most buckets one activity series may span (Elasticsearch 7 refuses more than 65,535 by default):
a series is zero-filled, so without a cap a tiny interval over years of data would allocate gigabytes."""

_INT64_MAX = 2**63 - 1


def query_range(from_date: float, to_date: float) -> tuple[int, int]:
    """The inclusive ms range a ``[from_date, to_date]`` query in seconds selects (quirk Q6).

    Both ends are clamped to int64, the type of stored timestamps.
    """
    return min(int(from_date) * 1000, _INT64_MAX), min(int(to_date) * 1000 + 999, _INT64_MAX)


def bucketize(ts: np.ndarray, values: np.ndarray, step_ms: int) -> Buckets:
    """Aggregate ``values`` at ``ts`` (ms, ascending) into epoch-aligned buckets of ``step_ms``."""
    keys = (ts // step_ms) * step_ms
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    return Buckets(
        keys[starts],
        np.minimum.reduceat(values, starts),
        np.maximum.reduceat(values, starts),
        np.add.reduceat(values, starts),
        np.diff(np.append(starts, len(keys))),
    )


def merge_buckets(parts: Sequence[Buckets]) -> Buckets:
    """Combine partials of the same bucketing into one (associative and commutative up to float rounding)."""
    if len(parts) == 1:
        return parts[0]
    keys = np.concatenate([p.keys for p in parts])
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))

    def combine(ufunc: np.ufunc, field: str) -> np.ndarray:
        return ufunc.reduceat(np.concatenate([getattr(p, field) for p in parts])[order], starts)

    return Buckets(
        keys[starts],
        combine(np.minimum, "mins"),
        combine(np.maximum, "maxs"),
        combine(np.add, "sums"),
        combine(np.add, "counts"),
    )


def _by_count_then_name(totals: Mapping[str, int]) -> list[str]:
    return sorted(totals, key=lambda name: (-totals[name], name))


def stats_report(histories: Mapping[str, WorkerHistory], query: StatsQuery) -> list[dict[str, Any]]:
    """The ``workers`` list of a get_stats response over the given histories (already filtered by id).

    Per worker and metric (and variant when ``split_by_variant``): the non-empty buckets' ``dates`` (ms)
    and one ``stats`` entry per distinct requested aggregation of that key, in request order. Values are
    the stored float32 values (as upstream's ES float fields give them); ``avg`` is their float64 mean.
    Each bucket is read from the coarsest data that answers it exactly (docs/storage.md).
    """
    lo, hi = query_range(query.from_date, query.to_date)
    aggregations: dict[str, list[str]] = {}
    for item in query.items:
        wanted = aggregations.setdefault(item.key, [])
        if item.aggregation not in wanted:
            wanted.append(item.aggregation)
    return render_stats(list(histories.items()), lo, hi, query.interval * 1000, aggregations, query.split_by_variant)


def activity_report(
    histories: Iterable[WorkerHistory], query: ActivityQuery, *, fixed: bool = False
) -> dict[str, dict[str, list[int]]]:
    """get_activity_report: distinct workers with ≥1 record per bucket, all (``total``) and with a task.

    Compatible mode (spec §8): each series spans its first..last non-empty bucket, zeros between, and
    its last bucket is always dropped (quirk Q3). ``fixed``: every bucket of ``[from_date, to_date]``
    zero-filled, the last dropped only when it extends past ``to_date - 0.9 * interval``.
    """
    lo, hi = query_range(query.from_date, query.to_date)
    step = query.interval * 1000
    keys, total, active = fleet_activity(histories, lo, hi, step)
    if fixed:
        first, last = (lo // step) * step, (hi // step) * step
        if last > (query.to_date - 0.9 * query.interval) * 1000:
            last -= step
        span = (first, last)
        return {"total": _series(keys, total, step, span), "active": _series(keys, active, step, span)}
    return {"total": _series(keys, total, step, None), "active": _series(keys, active, step, None)}


def _series(
    keys: np.ndarray, counts: np.ndarray, step: int, span: tuple[int, int] | None
) -> dict[str, list[int]]:
    nonzero = np.flatnonzero(counts)
    if span is None:
        if not len(nonzero):
            return {"dates": [], "counts": []}
        # Upstream's incomplete-bucket check compares ms with seconds, so the last bucket always goes (Q3).
        first, last = int(keys[nonzero[0]]), int(keys[nonzero[-1]]) - step
    else:
        first, last = span
    if last < first:
        return {"dates": [], "counts": []}
    n = (last - first) // step + 1
    if n > MAX_BUCKETS:
        raise FieldsValueError(f"interval too small: the report would span {n} buckets, at most {MAX_BUCKETS}")
    dates = np.arange(first, last + step, step, dtype=np.int64)
    filled = np.zeros(len(dates), np.int64)
    inside = (keys >= first) & (keys <= last)
    filled[(keys[inside] - first) // step] = counts[inside]
    return {"dates": dates.tolist(), "counts": filled.tolist()}


def metric_keys(histories: Iterable[WorkerHistory]) -> list[dict[str, Any]]:
    """get_metric_keys: categories and their metric keys over all retained history, by record count."""
    per_metric: dict[str, int] = {}
    for history in histories:
        for (metric, _variant), n in history.counts.items():
            per_metric[metric] = per_metric.get(metric, 0) + n
    per_category: dict[str, dict[str, int]] = {}
    for metric, n in per_metric.items():
        per_category.setdefault(category_of(metric), {})[metric] = n
    totals = {cat: sum(m.values()) for cat, m in per_category.items()}
    return [
        {"name": cat, "metric_keys": _by_count_then_name(per_category[cat])}
        for cat in _by_count_then_name(totals)
    ]

