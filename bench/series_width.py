"""Who pays for one worker's 100,000-wide report? Bytes per worker before and after it (issue 9 item 2).

In a child process (so each run has its own process-wide state): ``--workers`` histories get an hour of
realistic 24-value reports; then worker 0 sends one report with a ``cpu_usage`` list of ``--wide``
entries; then every worker reports for another 20 minutes (closing two 10 min buckets) and into the next
hour. Printed per worker: array bytes held (chunks and tier days, from the arrays' own sizes) and RSS
growth of the whole run divided by the workers.

``--before-src DIR`` also runs the workerhub package found in DIR (e.g. a checkout of main) and prints
both side by side. Keep ``--workers`` small for a version where series width is process-wide: each
worker then allocates ~0.4 GB.

    python bench/series_width.py --before-src ../main
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _fleet import rss_bytes, sample_pool, table  # noqa: E402 -- after the sys.path line that finds it

T0 = 1_700_006_400_000  # a UTC midnight


def _array_bytes(h: object) -> int:
    total = 0
    for chunk in h._chunks.values():  # type: ignore[attr-defined]
        total += chunk.ts.nbytes + chunk.task.nbytes + chunk.vals.nbytes
    for day in h._days.values():  # type: ignore[attr-defined]
        total += sum(a.nbytes for arrs in (day.mm, day.sc, day.rc) for a in arrs)
    return total


def _child(workers: int, wide: int) -> None:
    from workerhub.stats import WorkerHistory

    pool = sample_pool()
    rss0 = rss_bytes()
    hs = [WorkerHistory() for _ in range(workers)]
    for k in range(360):  # an hour at 10 s
        for w, h in enumerate(hs):
            h.add(T0 + k * 10_000, False, pool[(k + w) % len(pool)], 0.0)
    before = [_array_bytes(h) for h in hs]
    hs[0].add(T0 + 3_600_000, False, [("cpu_usage", str(i), 1.0) for i in range(wide)], 0.0)
    for k in range(121):  # 20 min more, into the next hour: two bucket closes, a new chunk
        for w, h in enumerate(hs):
            h.add(T0 + 3_600_000 + 1000 + k * 10_000, False, pool[(k + w) % len(pool)], 0.0)
    after = [_array_bytes(h) for h in hs]
    others = after[1:] or [0]
    print(
        json.dumps(
            {
                "before": sum(before) / workers,
                "others": sum(others) / len(others),
                "wide": after[0],
                "rss": (rss_bytes() - rss0) / workers,
            }
        )
    )


def _run(src: str | None, workers: int, wide: int) -> dict[str, float]:
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = os.path.abspath(src) + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, __file__, "--child", str(workers), str(wide)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(int(sys.argv[2]), int(sys.argv[3]))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--wide", type=int, default=100_000, help="entries of the one wide cpu_usage list")
    ap.add_argument("--before-src", help="also run against the workerhub package in this directory")
    args = ap.parse_args()
    runs = ([("before", args.before_src)] if args.before_src else []) + [("after", None)]
    rows = []
    for name, src in runs:
        r = _run(src, args.workers, args.wide)
        def mb(x: float) -> str:
            return f"{x / 1e6:,.2f}"

        rows.append((name, mb(r["before"]), mb(r["others"]), mb(r["wide"]), mb(r["rss"])))
    print(f"{args.workers} workers, 1 h + 20 min of 24-value reports; worker 0 sends one {args.wide:,}-wide report\n")
    header = ("code", "MB/worker before", "MB/other worker after", "MB wide worker after", "RSS MB/worker (run)")
    print(table(rows, header))


if __name__ == "__main__":
    main()
