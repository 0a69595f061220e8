"""Ingest cost per realistic report (24 values), in process: tiered storage vs the previous layout.

Rounds alternate between the two layouts so machine noise hits both alike; each round feeds ``--workers``
histories ``--reports`` reports each (time-major, 10 s cadence, every 10 min bucket closed and rolled up
along the way) and records CPU µs per report. Medians over ``--rounds``. Also shows the flattening of
``machine_stats`` (which the HTTP/stream paths do before ``add``) and the two together.

    python bench/bench_ingest_stats.py
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _fleet import START_MS, realistic_body, table  # noqa: E402
from _legacy_history import WorkerHistory as Legacy  # noqa: E402

from workerhub.stats import WorkerHistory  # noqa: E402
from workerhub.stats.flatten import flatten_machine_stats  # noqa: E402


def feed(make: type, bodies: list, workers: int, reports: int, flatten: bool) -> float:
    hs = [make() for _ in range(workers)]
    pool = bodies if flatten else [flatten_machine_stats(b) for b in bodies]
    n = len(pool)
    t = time.process_time()
    for k in range(reports):
        ts = START_MS + k * 10_000
        for w, h in enumerate(hs):
            x = pool[(k + w) % n]
            h.add(ts + w, w % 3 != 0, flatten_machine_stats(x) if flatten else x, ts / 1000)
    return (time.process_time() - t) / (workers * reports) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=100)
    ap.add_argument("--reports", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    rng = random.Random(3)
    bodies = [realistic_body(rng) for _ in range(256)]
    results: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for name, make in (("tiers", WorkerHistory), ("legacy", Legacy)):
            results.setdefault(f"{name} add", []).append(feed(make, bodies, args.workers, args.reports, False))
            results.setdefault(f"{name} flatten+add", []).append(feed(make, bodies, args.workers, args.reports, True))
        t = time.process_time()
        for _ in range(20):
            for b in bodies:
                flatten_machine_stats(b)
        results.setdefault("flatten", []).append((time.process_time() - t) / (20 * len(bodies)) * 1e6)
    med = {k: statistics.median(v) for k, v in results.items()}
    rows = [
        ("flatten_machine_stats (24 values)", f"{med['flatten']:.2f}", "—"),
        ("add: array('d') columns, no tiers (before)", f"{med['legacy add']:.2f}", "1.00×"),
        ("add: float32 chunks + 10 min/1 h tiers (this)", f"{med['tiers add']:.2f}", f"{med['tiers add'] / med['legacy add']:.2f}×"),
        ("flatten + add (before)", f"{med['legacy flatten+add']:.2f}", "1.00×"),
        ("flatten + add (this)", f"{med['tiers flatten+add']:.2f}", f"{med['tiers flatten+add'] / med['legacy flatten+add']:.2f}×"),
    ]
    print(table(rows, ("operation, per report", "CPU µs (median)", "vs before")))


if __name__ == "__main__":
    main()
