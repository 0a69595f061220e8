"""get_stats pauses the cyclic collector while it builds the response, and restores the caller's setting."""

from __future__ import annotations

import gc

from workerhub.messages import StatsItem, StatsQuery
from workerhub.stats import WorkerHistory, stats_report


def _query() -> list:
    h = WorkerHistory()
    for k in range(200):
        h.add(1_700_000_000_000 + k * 10_000, k % 2 == 0, [("cpu_usage", "0", float(k))], written_at=0.0)
    q = StatsQuery(1_700_000_000, 1_700_002_000, 600, (StatsItem("cpu_usage", "max"),))
    return stats_report({"w": h}, q)


def test_gc_state_restored() -> None:
    assert gc.isenabled()
    assert _query()
    assert gc.isenabled()
    gc.disable()
    try:
        assert _query()
        assert not gc.isenabled()
    finally:
        gc.enable()
