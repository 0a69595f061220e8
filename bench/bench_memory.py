"""Memory per retained raw value and ingest cost per report: tiered float32 storage vs the old layout.

Builds W workers × R reports (default 1,000 × 8,640 = 24 h at a 10 s cadence, 24 values per report)
through ``WorkerHistory.add`` (the ingest path the actors call, no HTTP), and prints RSS growth / values
held, all in (raw chunks, both tiers, indexes, Python objects). The reference is the previous layout
(``array('d')`` column per series, no tiers; ``bench/_legacy_history.py``) on ``--ref-workers`` workers
in a fresh process (so its pages do not blur the other figure), measured the same way.

    python bench/bench_memory.py                      # the issue's target: 1,000 × 8,640
    python bench/bench_memory.py --workers 100        # quicker
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _fleet import build, rss_bytes, sample_pool, table  # noqa: E402


def measure(kind: str, workers: int, reports: int) -> dict[str, float]:
    if kind == "tiers":
        from workerhub.stats import WorkerHistory as make
    else:
        from _legacy_history import WorkerHistory as make
    pool = sample_pool()
    values_per_report = sum(len(p) for p in pool) / len(pool)
    make().add(0, False, pool[0], 0.0)  # import-time and first-use allocations happen before the baseline
    gc.collect()
    before = rss_bytes()
    hs, us = build(make, workers, reports, pool=pool)
    gc.collect()
    after = rss_bytes()
    values = sum(len(h) for h in hs) * values_per_report
    return {"workers": workers, "reports": reports, "values": values, "rss": after - before, "us_per_add": us}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=1000)
    ap.add_argument("--reports", type=int, default=8640)
    ap.add_argument("--ref-workers", type=int, default=100, help="workers for the old layout (0: skip)")
    ap.add_argument("--child", choices=["tiers", "legacy"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.workers, args.reports)))
        return
    rows = []
    runs = [("tiers", args.workers)] + ([("legacy", args.ref_workers)] if args.ref_workers else [])
    for kind, workers in runs:
        out = subprocess.run(
            [sys.executable, __file__, "--child", kind, "--workers", str(workers), "--reports", str(args.reports)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        r = json.loads(out.strip().splitlines()[-1])
        label = "float32 raw + 10 min/1 h tiers (this)" if kind == "tiers" else "array('d') columns, no tiers (before)"
        rows.append(
            (
                label,
                f"{r['workers']} × {r['reports']}",
                f"{r['values'] / 1e6:.1f} M",
                f"{r['rss'] / 2**20:.0f} MiB",
                f"{r['rss'] / r['values']:.2f}",
                f"{r['us_per_add']:.1f}",
            )
        )
    print(table(rows, ("layout", "workers × reports", "values held", "RSS growth", "B / value all in", "µs / add")))


if __name__ == "__main__":
    main()
