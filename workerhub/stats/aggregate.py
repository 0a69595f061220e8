"""The three stats queries, as clearml-server 2.4 answers them on Elasticsearch.

Buckets are epoch-aligned: a record at ``ts`` ms falls in the bucket starting at
``floor(ts / step) * step`` with ``step = interval * 1000`` (spec §7, quirk Q7). A query range
``[from_date, to_date]`` in seconds covers ``int(from_date) * 1000 ..= int(to_date) * 1000 + 999`` ms (Q6).
Answers are ordered as ES terms aggregations order them: by record count descending, then by name (Q9),
never truncated to 10 (Q8, a deliberate deviation).

get_stats and get_activity_report are :mod:`.jobs` (budget checked first, evaluated in slices); the
functions here run a job in one go, for callers that need not yield between slices.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..messages import ActivityQuery, StatsQuery
from .flatten import category_of
from .history import WorkerHistory
from .jobs import MAX_BUCKETS, ActivityJob, StatsJob, query_range

__all__ = ["MAX_BUCKETS", "activity_report", "metric_keys", "query_range", "stats_report"]


def _by_count_then_name(totals: Mapping[str, int]) -> list[str]:
    return sorted(totals, key=lambda name: (-totals[name], name))


def stats_report(
    histories: Mapping[str, WorkerHistory], query: StatsQuery, *, max_values: int | None = None
) -> list[dict[str, Any]]:
    """The ``workers`` list of a get_stats response over the given histories (already filtered by id).

    Per worker and metric (and variant when ``split_by_variant``): the non-empty buckets' ``dates`` (ms)
    and one ``stats`` entry per distinct requested aggregation of that key, in request order. Values are
    the stored float32 values (as upstream's ES float fields give them); ``avg`` is their float64 mean.
    Each bucket is read from the coarsest data that answers it exactly (docs/storage.md). An answer over
    the budget (``max_values``, :data:`MAX_BUCKETS`) is refused with 400/16 naming ``interval``.
    """
    return StatsJob(histories, query, max_values=max_values).run()


def activity_report(
    histories: Iterable[WorkerHistory], query: ActivityQuery, *, fixed: bool = False
) -> dict[str, dict[str, list[int]]]:
    """get_activity_report: distinct workers with ≥1 record per bucket, all (``total``) and with a task.

    Compatible mode (spec §8): each series spans its first..last non-empty bucket, zeros between, and
    its last bucket is always dropped (quirk Q3). ``fixed``: every bucket of ``[from_date, to_date]``
    zero-filled, the last dropped only when it extends past ``to_date - 0.9 * interval``.
    """
    return ActivityJob(histories, query, fixed=fixed).run()


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

