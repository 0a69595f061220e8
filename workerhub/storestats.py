"""Counters the durable store keeps about itself, read by ``/metrics`` and ``/readyz`` at scrape time.

Plain numbers updated inline (an increment per journal append, a bucket bump per fsync): no locks, no
metrics library in the persistence layer. :mod:`workerhub.ops.metrics` turns them into Prometheus families.
A bottom-layer module (plain data, no imports of the package), so the hub's probes and metrics read them
without the actors depending on persistence.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

__all__ = ["FSYNC_BUCKETS", "PersistenceStatistics"]

FSYNC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
"""Upper bounds (s) of the fsync latency histogram: page-cache-fast SSD fsyncs up to a stalled disk."""


@dataclass(slots=True)
class PersistenceStatistics:
    """What the store did since the process started; ``journal_error`` is why appends fail now, if they do."""

    journal_appends: int = 0
    fsync_counts: list[int] = field(default_factory=lambda: [0] * (len(FSYNC_BUCKETS) + 1))
    fsync_sum: float = 0.0
    snapshots: int = 0
    snapshot_failures: int = 0
    last_snapshot_at: float | None = None  # hub wall time (epoch s) of the last snapshot on disk
    last_snapshot_seconds: float | None = None
    last_snapshot_bytes: int | None = None
    journal_error: str | None = None

    def fsync_done(self, seconds: float) -> None:
        self.fsync_counts[bisect.bisect_left(FSYNC_BUCKETS, seconds)] += 1
        self.fsync_sum += seconds

    def snapshot_done(self, at: float, seconds: float, size: int) -> None:
        self.snapshots += 1
        self.last_snapshot_at, self.last_snapshot_seconds, self.last_snapshot_bytes = at, seconds, size
