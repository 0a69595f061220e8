"""What /metrics costs: the per-call recording in dispatch, and a scrape (collect + render) by fleet size.

In process, no HTTP: a hub holding W live workers, each with R reports of realistic machine stats (24
values at a 10 s cadence, built through ``WorkerHistory.add``), scraped with ``Metrics.render()`` as the
/metrics route does, with and without the ``metrics_fleet`` gauges.

    python bench/bench_metrics.py                       # 100, 1,000 and 5,000 workers x 360 reports (1 h)
    python bench/bench_metrics.py --workers 1000 --reports 60
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import trio

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _fleet import START_MS, build, table  # noqa: E402

from workerhub import Settings  # noqa: E402
from workerhub.actors import open_hub  # noqa: E402
from workerhub.clock import Clock  # noqa: E402
from workerhub.messages import RegisterRequest  # noqa: E402
from workerhub.persistence import HubState  # noqa: E402
from workerhub.stats import WorkerHistory  # noqa: E402


def observe_cost(calls: int = 200_000) -> float:
    """CPU µs per ``Metrics.observe`` (one counter increment and one histogram observation)."""

    async def main() -> float:
        async with open_hub(Settings(persist=False)) as hub:
            observe = hub.metrics.observe
            t0 = time.process_time()
            for i in range(calls):
                observe("workers.status_report", 200, 0.00004 * (i % 7))
            return (time.process_time() - t0) / calls * 1e6

    return trio.run(main)


def scrape_cost(workers: int, reports: int, fleet: bool, repeat: int = 5) -> tuple[float, int]:
    """Median CPU ms per scrape and the body size in bytes."""
    histories, _us = build(WorkerHistory, workers, reports)
    wall = START_MS / 1000 + reports * 10 + 5

    async def main() -> tuple[float, int]:
        settings = Settings(persist=False, metrics_fleet=fleet, default_timeout=86_400)
        async with open_hub(settings, clock=Clock(wall)) as hub:
            hub.restore(HubState(wall, [], [("workerhub", f"w{i:05d}", h) for i, h in enumerate(histories)]))
            for i in range(workers):
                await hub.register(RegisterRequest(worker=f"w{i:05d}", timeout=86_400))
            times, size = [], 0
            for _ in range(repeat):
                t0 = time.process_time()  # CPU: the figure a busy shared machine does not blur
                size = len(hub.metrics.render())
                times.append((time.process_time() - t0) * 1000)
            return statistics.median(times), size

    return trio.run(main)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="*", default=[100, 1_000, 5_000])
    parser.add_argument("--reports", type=int, default=360)
    args = parser.parse_args()
    print(f"Metrics.observe (per call, in dispatch): {observe_cost():.2f} µs\n")
    rows = []
    for workers in args.workers:
        for fleet in (False, True):
            ms, size = scrape_cost(workers, args.reports, fleet)
            rows.append((f"{workers:,}", args.reports, "on" if fleet else "off", f"{ms:.1f}", f"{size / 1000:.0f}"))
    print(table(rows, ("workers", "reports each", "metrics_fleet", "scrape CPU ms (median of 5)", "body kB")))


if __name__ == "__main__":
    main()
