"""Fan-out query speed: get_stats, get_activity_report, get_metric_keys, get_all at fleet scale.

Each query is timed side by side with ``orjson.dumps`` of its own response (the cost any server pays to
put that answer on the wire), medians of ``--repeat`` runs. Fleets are built through
``WorkerHistory.add`` (the ingest path, no HTTP):

* get_stats / get_metric_keys: ``--workers`` (1,000) × 24 h at a 10 s cadence, 24 values per report;
  query cpu_usage avg+min+max at 600 s over the last 24 h (from_date not on a bucket boundary, so the
  first bucket's edge comes from raw rows and the newest, still pending, bucket too);
* get_activity_report: ``--activity-workers`` (10,000) × 24 h at ``--activity-cadence`` (60 s: the query
  reads tier buckets and two raw edges per worker, so its cost does not depend on the cadence; the
  build would take 6× longer at 10 s), 600 s buckets;
* get_all: ``--activity-workers`` live workers registered in a running hub (trio), ``last_seen`` 0.

    python bench/bench_query.py                      # the issue's targets
    python bench/bench_query.py --workers 100 --activity-workers 1000   # quicker
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _fleet import DAY_S, START_MS, build, sample_pool, table  # noqa: E402

from workerhub.messages import ActivityQuery, StatsItem, StatsQuery  # noqa: E402
from workerhub.stats import WorkerHistory, activity_report, metric_keys, stats_report  # noqa: E402

WALL: list[float] = []


def median_ms(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median CPU ms of ``fn`` (process time: stable on a shared, loaded machine; the wall-clock median
    is appended to ``WALL``)."""
    cpu = []
    wall = []
    out = None
    for _ in range(repeat):
        gc.collect()
        w, t = time.perf_counter(), time.process_time()
        out = fn()
        cpu.append((time.process_time() - t) * 1000)
        wall.append((time.perf_counter() - w) * 1000)
    WALL.append(statistics.median(wall))
    return statistics.median(cpu), out


def row(label: str, q: str, s: str, target: str) -> tuple[str, str, str, str, str]:
    """A table row; the query's wall median is the second-to-last one recorded."""
    return (label, q, f"{WALL[-2]:.1f}", s, target)


def get_all_rows(n: int, repeat: int) -> tuple[float, float]:
    import trio

    from workerhub.actors.hub import open_hub
    from workerhub.config import Settings
    from workerhub.messages import RegisterRequest

    result: list[float] = []

    async def run() -> None:
        async with open_hub(Settings(max_workers=n + 1)) as hub:
            for k in range(n):
                await hub.register(RegisterRequest(f"worker-{k:05d}", 600, ("default",)), ip="10.0.0.1")
            await trio.sleep(0)
            q, out = median_ms(lambda: hub.get_all(0), repeat)
            assert len(out) == n
            s, _ = median_ms(lambda: orjson.dumps({"workers": out}), repeat)
            result.extend((q, s))

    trio.run(run)
    return result[0], result[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=1000)
    ap.add_argument("--activity-workers", type=int, default=10_000)
    ap.add_argument("--activity-cadence", type=int, default=60, help="seconds between reports (activity fleet)")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--profile", action="store_true", help="after the table: where each query's CPU goes")
    args = ap.parse_args()
    print("load average (1, 5, 15 min) at the start: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()), file=sys.stderr)
    rows = []

    # Activity fleet first, with one-value reports: it only needs rows and task flags.
    per_day = DAY_S // args.activity_cadence
    one = [(("cpu_usage", "0", 50.0),)]
    t = time.perf_counter()
    fleet, us = build(WorkerHistory, args.activity_workers, per_day, args.activity_cadence * 1000, pool=one)
    print(f"built activity fleet {args.activity_workers} × {per_day} in {time.perf_counter() - t:.0f} s ({us:.1f} µs/add)", file=sys.stderr)
    to_s = (START_MS // 1000) + DAY_S - 1
    aq = ActivityQuery(to_s - DAY_S + 317, to_s, 600)
    q, out = median_ms(lambda: activity_report(fleet, aq), args.repeat)  # noqa: F821 -- runs before the del
    s, _ = median_ms(lambda: orjson.dumps(out), args.repeat)
    rows.append(row(f"get_activity_report {args.activity_workers} workers × 24 h @600 s", f"{q:.1f}", f"{s:.2f}", "≤ 50 ms"))
    if args.profile:
        profile("get_activity_report", lambda: activity_report(fleet, aq))  # noqa: F821 -- before the del
    del fleet
    gc.collect()

    q, s = get_all_rows(args.activity_workers, args.repeat)
    rows.append(row(f"get_all {args.activity_workers} live workers (hub)", f"{q:.1f}", f"{s:.1f}", "≤ 100 ms"))

    t = time.perf_counter()
    hs, us = build(WorkerHistory, args.workers, 8640, pool=sample_pool())
    print(f"built stats fleet {args.workers} × 8640 in {time.perf_counter() - t:.0f} s ({us:.1f} µs/add)", file=sys.stderr)
    histories = {f"worker-{k:05d}": h for k, h in enumerate(hs)}
    items = tuple(StatsItem("cpu_usage", a) for a in ("avg", "min", "max"))
    for split in (False, True):
        sq = StatsQuery(to_s - DAY_S + 317, to_s, 600, items, split_by_variant=split)
        q, out = median_ms(lambda: stats_report(histories, sq), args.repeat)  # noqa: B023 -- called at once
        s, _ = median_ms(lambda: orjson.dumps({"workers": out}), args.repeat)  # noqa: B023 -- called at once
        label = "split_by_variant" if split else "pooled"
        rows.append(row(f"get_stats {args.workers} workers × 24 h @600 s, {label}", f"{q:.1f}", f"{s:.1f}", f"{q / s:.2f}× (≤ 1.5×)"))
    sq = StatsQuery(to_s - DAY_S + 317, to_s, 3600, items)
    q, out = median_ms(lambda: stats_report(histories, sq), args.repeat)
    s, _ = median_ms(lambda: orjson.dumps({"workers": out}), args.repeat)
    rows.append(row(f"get_stats {args.workers} workers × 24 h @3600 s, pooled", f"{q:.1f}", f"{s:.1f}", f"{q / s:.2f}×"))
    sq = StatsQuery(to_s - DAY_S + 317, to_s, 60, items)
    q, out = median_ms(lambda: stats_report(histories, sq), max(3, args.repeat // 2))
    s, _ = median_ms(lambda: orjson.dumps({"workers": out}), max(3, args.repeat // 2))
    rows.append(row(f"get_stats {args.workers} workers × 24 h @60 s (raw), pooled", f"{q:.1f}", f"{s:.1f}", f"{q / s:.2f}× (≤ 5×)"))
    q, out = median_ms(lambda: metric_keys(hs), args.repeat)
    s, _ = median_ms(lambda: orjson.dumps(out), args.repeat)
    rows.append(row(f"get_metric_keys {args.workers} workers", f"{q:.1f}", f"{s:.3f}", "—"))
    print(table(rows, ("query", "CPU ms (median)", "wall ms (median)", "orjson.dumps of the response, CPU ms", "ratio / target")))
    print("load average (1, 5, 15 min) at the end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    if args.profile:
        for interval, split in ((600, False), (600, True), (60, False)):
            sq = StatsQuery(to_s - DAY_S + 317, to_s, interval, items, split_by_variant=split)
            profile(f"get_stats @{interval} s split={split}", lambda: stats_report(histories, sq))  # noqa: B023


def profile(label: str, fn: Callable[[], Any]) -> None:
    """Top functions by own CPU time (cProfile on process time), and what the cyclic collector's first pass
    over the answer costs: the query with the collector off, then one generation-0 collection."""
    import cProfile
    import pstats

    gc.collect()
    pr = cProfile.Profile(time.process_time)
    pr.enable()
    fn()
    pr.disable()
    print(f"\n### {label}")
    pstats.Stats(pr).sort_stats("tottime").print_stats(12)
    gc.collect()
    gc.disable()
    try:
        t = time.process_time()
        out = fn()
        q = time.process_time() - t
        t = time.process_time()
        gc.collect(0)
        c = time.process_time() - t
    finally:
        gc.enable()
    del out
    print(f"{label}: {q * 1000:.1f} ms with the collector off, then {c * 1000:.1f} ms for its pass over the answer")


if __name__ == "__main__":
    main()
