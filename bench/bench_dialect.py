"""What the 2.32 answers cost next to the 2.4 ones on the same fleet: get_stats (zero-filled grid, per-GPU
``resource_series``) and get_activity_report (zero-filled, 40 s floor), core functions without HTTP.

The fleet: ``--workers`` (200) × 24 h at a 10 s cadence, an 8-core 2-GPU agent's 24 values per report
(``bench/_fleet.py``). Queries: the last 24 h (from_date off a bucket boundary), cpu_usage avg+min+max or
gpu_usage avg, at 600 s and 60 s. Each row: median CPU ms of ``--repeat`` runs, and ``orjson.dumps`` of
the response for scale.

    python bench/bench_dialect.py                 # ~1 min on the 2-core VM
    python bench/bench_dialect.py --workers 50    # quicker
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import orjson

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _fleet import DAY_S, START_MS, build, sample_pool, table  # noqa: E402
from bench_query import median_ms  # noqa: E402

from workerhub.messages import ActivityQuery, StatsItem, StatsQuery  # noqa: E402
from workerhub.stats import WorkerHistory, activity_report, stats_report  # noqa: E402
from workerhub.stats.grid import activity_grid, stats_grid  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    t = time.perf_counter()
    hs, _us = build(WorkerHistory, args.workers, DAY_S // 10, pool=sample_pool())
    print(f"built {args.workers} workers × 24 h in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    histories = {f"worker-{k:05d}": h for k, h in enumerate(hs)}
    to_s = (START_MS // 1000) + DAY_S - 1
    from_s = to_s - DAY_S + 317
    cpu = tuple(StatsItem("cpu_usage", a) for a in ("avg", "min", "max"))
    gpu = (StatsItem("gpu_usage", "avg"),)
    rows = []
    for interval in (600, 60):
        for label, items, split in (
            ("cpu_usage avg+min+max", cpu, False),
            ("gpu_usage avg, per GPU", gpu, True),
        ):
            old_q = StatsQuery(from_s, to_s, interval, items, split_by_variant=split)
            new_q = StatsQuery(from_s, to_s, interval, items, split_by_resource=split)
            old, _ = median_ms(lambda q=old_q: stats_report(histories, q), args.repeat)
            new, new_out = median_ms(lambda q=new_q: stats_grid(histories, q), args.repeat)
            dump, _ = median_ms(lambda o=new_out: orjson.dumps({"workers": o}), args.repeat)
            rows.append(
                (
                    f"get_stats @{interval} s, {label}",
                    f"{old:.1f}",
                    f"{new:.1f}",
                    f"{new / old:.2f}×",
                    f"{dump:.1f}",
                )
            )
    aq = ActivityQuery(from_s, to_s, 600)
    old, _ = median_ms(lambda: activity_report(hs, aq), args.repeat)
    new, out = median_ms(lambda: activity_grid(hs, aq), args.repeat)
    dump, _ = median_ms(lambda: orjson.dumps(out), args.repeat)
    rows.append(
        ("get_activity_report @600 s", f"{old:.1f}", f"{new:.1f}", f"{new / old:.2f}×", f"{dump:.2f}")
    )
    header = (
        "query (" + f"{args.workers} workers × 24 h)",
        "2.4 CPU ms",
        "2.32 CPU ms",
        "2.32 / 2.4",
        "orjson.dumps of the 2.32 answer, ms",
    )
    print(table(rows, header))


if __name__ == "__main__":
    main()
