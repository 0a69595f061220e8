"""The pure stats core: flattening, compact per-worker history, bucket aggregation and merging.

Nothing here imports trio or quart: Hypothesis tests it directly against a brute-force reference, and the
actors and API only call it.
"""

from .aggregate import Buckets, activity_report, bucketize, merge_buckets, metric_keys, query_range, stats_report
from .flatten import KNOWN_FIELDS, flatten_machine_stats
from .history import WorkerHistory

__all__ = [
    "Buckets",
    "KNOWN_FIELDS",
    "WorkerHistory",
    "activity_report",
    "bucketize",
    "flatten_machine_stats",
    "merge_buckets",
    "metric_keys",
    "query_range",
    "stats_report",
]
