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

__all__ = [
    "Buckets",
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


MAX_ACTIVITY_BUCKETS = 1_000_000
"""Most buckets one activity series may hold. Series are zero-filled, so without a cap a 1 s interval over
years of range (fixed mode) or over data spread across years (compatible mode) would allocate gigabytes;
Elasticsearch refuses such requests too (``search.max_buckets``)."""


def query_range(from_date: float, to_date: float) -> tuple[int, int]:
    """The inclusive ms range a ``[from_date, to_date]`` query in seconds selects (quirk Q6)."""
    return int(from_date) * 1000, int(to_date) * 1000 + 999


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
    and one ``stats`` entry per distinct requested aggregation of that key, in request order.
    """
    lo, hi = query_range(query.from_date, query.to_date)
    step = query.interval * 1000
    aggregations: dict[str, list[str]] = {}
    for item in query.items:
        wanted = aggregations.setdefault(item.key, [])
        if item.aggregation not in wanted:
            wanted.append(item.aggregation)
    metrics = frozenset(aggregations)

    workers: list[tuple[int, str, list[dict[str, Any]]]] = []
    for worker_id, history in histories.items():
        series = history.series(lo, hi, metrics)
        if not series:
            continue
        per_metric: dict[str, dict[str, Buckets]] = {}
        for (metric, variant), (ts, values) in series.items():
            per_metric.setdefault(metric, {})[variant] = bucketize(ts, values, step)
        entries: list[tuple[int, str, list[dict[str, Any]]]] = []
        for metric, variants in per_metric.items():
            wanted = aggregations[metric]
            if query.split_by_variant:
                ranked = sorted(variants.items(), key=lambda kv: (-kv[1].total, kv[0]))
                rendered = [_render(metric, b, wanted, variant) for variant, b in ranked]
                total = sum(b.total for b in variants.values())
            else:
                pooled = merge_buckets(list(variants.values()))
                rendered = [_render(metric, pooled, wanted, None)]
                total = pooled.total
            entries.append((total, metric, rendered))
        entries.sort(key=lambda e: (-e[0], e[1]))
        workers.append(
            (
                sum(e[0] for e in entries),
                worker_id,
                [m for e in entries for m in e[2]],
            )
        )
    workers.sort(key=lambda w: (-w[0], w[1]))
    return [{"worker": worker_id, "metrics": metrics_out} for _, worker_id, metrics_out in workers]


def _render(metric: str, b: Buckets, aggregations: list[str], variant: str | None) -> dict[str, Any]:
    stats = []
    for agg in aggregations:
        if agg == "avg":
            values = b.sums / b.counts
        elif agg == "min":
            values = b.mins
        else:
            values = b.maxs
        stats.append({"aggregation": agg, "values": values.tolist()})
    out: dict[str, Any] = {"metric": metric}
    if variant is not None:
        out["variant"] = variant
    out["dates"] = b.keys.tolist()
    out["stats"] = stats
    return out


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
    total_keys: list[np.ndarray] = []
    active_keys: list[np.ndarray] = []
    for history in histories:
        ts, task = history.rows(lo, hi)
        if not len(ts):
            continue
        keys = (ts // step) * step
        total_keys.append(np.unique(keys))
        if task.any():
            active_keys.append(np.unique(keys[task]))
    if fixed:
        first, last = (lo // step) * step, (hi // step) * step
        if last > (query.to_date - 0.9 * query.interval) * 1000:
            last -= step
        span = (first, last)
        return {"total": _series(total_keys, step, span), "active": _series(active_keys, step, span)}
    return {"total": _series(total_keys, step, None), "active": _series(active_keys, step, None)}


def _series(
    per_worker_keys: list[np.ndarray], step: int, span: tuple[int, int] | None
) -> dict[str, list[int]]:
    if per_worker_keys:
        keys, counts = np.unique(np.concatenate(per_worker_keys), return_counts=True)
    else:
        keys = counts = np.empty(0, np.int64)
    if span is None:
        if not len(keys):
            return {"dates": [], "counts": []}
        # Upstream's incomplete-bucket check compares ms with seconds, so the last bucket always goes (Q3).
        first, last = int(keys[0]), int(keys[-1]) - step
    else:
        first, last = span
    if last < first:
        return {"dates": [], "counts": []}
    if (last - first) // step + 1 > MAX_ACTIVITY_BUCKETS:
        raise FieldsValueError(
            f"interval too small: more than {MAX_ACTIVITY_BUCKETS} buckets", interval=step // 1000
        )
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

