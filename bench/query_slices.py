"""Where a large get_stats spends its time between two yields: per slice, ordering, and encoding the answer.

In process (no server): ``--workers`` histories x 24 h at 10 s of 24-value reports (the ingest path), then
the 60 s pooled query of bench/query_stall.py run as a :class:`~workerhub.stats.StatsJob`. Prints the
slice count and the longest / median slice, the final ordering, and ``orjson.dumps`` of the answer (what
the HTTP transport does in one call after the last slice), in CPU ms.

    python bench/query_slices.py --workers 200
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import orjson

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _fleet import DAY_S, START_MS, build, table

from workerhub.messages import StatsItem, StatsQuery
from workerhub.stats import StatsJob, WorkerHistory


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=200)
    ap.add_argument("--interval", type=int, default=60)
    args = ap.parse_args()
    hs, _ = build(WorkerHistory, args.workers, DAY_S // 10)
    histories = {f"w{w:05d}": h for w, h in enumerate(hs)}
    lo = START_MS // 1000
    items = tuple(StatsItem(k, "avg") for k in ("cpu_usage", "gpu_usage", "memory_used"))
    job = StatsJob(histories, StatsQuery(lo, lo + DAY_S, args.interval, items))
    slices = []
    steps = job.steps()
    while True:
        t = time.process_time()
        try:
            next(steps)
        except StopIteration:
            break
        slices.append((time.process_time() - t) * 1000)
    t = time.process_time()
    answer = job.result()
    order_ms = (time.process_time() - t) * 1000
    t = time.process_time()
    body = orjson.dumps({"workers": answer})
    dumps_ms = (time.process_time() - t) * 1000
    print(f"{args.workers} workers x 24 h at 10 s; get_stats cpu/gpu/memory avg at {args.interval} s\n")
    rows = [
        ("slices", len(slices)),
        ("longest slice ms", f"{max(slices):.1f}"),
        ("median slice ms", f"{statistics.median(slices):.1f}"),
        ("all slices ms", f"{sum(slices):.0f}"),
        ("order rows ms", f"{order_ms:.1f}"),
        ("orjson.dumps ms", f"{dumps_ms:.0f}"),
        ("answer MB", f"{len(body) / 1e6:.1f}"),
    ]
    print(table(rows, ("what", "CPU")))


if __name__ == "__main__":
    main()
