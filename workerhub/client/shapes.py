"""The reply shapes of the calls whose answer depends on the API version, as ``TypedDict`` s.

Below 2.32 get_stats answers in the 2020 shape (:class:`MetricStats` with ``dates`` per metric and
``variant`` when split); from 2.32 every stat carries its own ``dates`` on a zero-filled grid and
``resource_series`` (:class:`MetricStatsV232`). Pick the version with ``HttpClient(url, version="2.34")``
(or a ``v2.34/`` prefix on a stream call name); unversioned calls get the server's ``max_api_version``.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

__all__ = [
    "ActivityReport",
    "ActivitySeries",
    "AggregationStats",
    "AggregationStatsV232",
    "MetricStats",
    "MetricStatsV232",
    "ResourceSeries",
    "StatsReply",
    "StatsReplyV232",
    "WorkerCount",
    "WorkerStats",
    "WorkerStatsV232",
]

Aggregation = Literal["avg", "min", "max"]


class AggregationStats(TypedDict):
    aggregation: Aggregation
    values: list[float]


class MetricStats(TypedDict):
    """API 2.4-2.31: the non-empty buckets of one metric (or one variant of it, ``split_by_variant``)."""

    metric: str
    variant: NotRequired[str]
    dates: list[int]
    stats: list[AggregationStats]


class WorkerStats(TypedDict):
    worker: str
    metrics: list[MetricStats]


class StatsReply(TypedDict):
    workers: list[WorkerStats]


class ResourceSeries(TypedDict):
    """One GPU's series (``name`` ``"0"``, ``"1"``, ...), on the same dates as its stat."""

    name: str
    values: list[float]


class AggregationStatsV232(TypedDict):
    """API 2.32+: every bucket of the grid, 0.0 where no record fell."""

    aggregation: Aggregation
    dates: list[int]
    values: list[float]
    resource_series: list[ResourceSeries]


class MetricStatsV232(TypedDict):
    metric: str
    stats: list[AggregationStatsV232]


class WorkerStatsV232(TypedDict):
    worker: str
    metrics: list[MetricStatsV232]


class StatsReplyV232(TypedDict):
    workers: list[WorkerStatsV232]


class ActivitySeries(TypedDict):
    dates: list[int]
    counts: list[int]


class ActivityReport(TypedDict):
    """Both dialects; from 2.32 the series cover the whole range (zero-filled, 40 s floor)."""

    total: ActivitySeries
    active: ActivitySeries


class WorkerCount(TypedDict):
    """workers.get_count (API 2.26+; reachable at every version)."""

    count: int
