"""The pure stats core: flattening, compact per-worker history, and the queries over it.

Nothing here imports trio or quart: Hypothesis tests it directly against a brute-force reference, and the
actors and API only call it.
"""

from .aggregate import activity_report, metric_keys, query_range, stats_report
from .flatten import flatten_machine_stats
from .history import WorkerHistory
from .jobs import ActivityJob, StatsJob

__all__ = [
    "ActivityJob",
    "StatsJob",
    "WorkerHistory",
    "activity_report",
    "flatten_machine_stats",
    "metric_keys",
    "query_range",
    "stats_report",
]
