"""CPU per journaled status_report, in process: the store's ``append`` (record encoding, framing, the write),
one ``os.write`` per call against one per stream read batch, side by side with another checkout.

The reports are loadgen's fleet bodies parsed as the server parses them (so the journal sees the parser's
interned shape, as on the stream path). Rows (``interval`` fsync, as ``serve`` runs it, fsyncs included in
the CPU time since they run in this process's threads):

  encode     ``encode_record`` alone (best of 3 passes), compared with the same row of the other tree
  per call   ``DiskStore.append`` writes each record (HTTP; and every call on a tree without read batches)
  batch N    the stream's read batch: appends kept back and written by one flush every N calls (compared
             with the other tree's "per call" when it has no batches)

    python bench/bench_journal_batch.py [--reports 20000] [--rounds 5] [--batch 70] [--compare SRC]

``--compare SRC`` alternates child processes of this script with ``PYTHONPATH`` set to this tree and to
SRC (e.g. a worktree of main), ``--rounds`` times each, and prints medians and per-round ratios.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import trio

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from loadgen import fleet_reports  # noqa: E402

from workerhub import Settings, open_hub  # noqa: E402
from workerhub.api.parse import parse_status_report  # noqa: E402
from workerhub.messages import DEFAULT_IDENTITY  # noqa: E402
from workerhub.persistence import DiskStore  # noqa: E402
from workerhub.persistence.format import encode_record  # noqa: E402


async def _measure(reports: list[Any], batch_calls: int) -> float:
    d = tempfile.mkdtemp(prefix="workerhub-journal-batch-")
    try:
        store = DiskStore(d, journal_fsync="interval")
        async with open_hub(Settings(data_dir=d), store=store) as hub, store.serving(hub):
            flush = None
            if batch_calls:
                from workerhub.hubstate import AppendBatch, current_batch

                batch = AppendBatch()
                current_batch.set(batch)
                batch.open = True
                flush = batch.flush
            c0 = time.process_time()
            for i, report in enumerate(reports, 1):
                await store.append("status_report", DEFAULT_IDENTITY, report, "10.0.0.1", 1.7e9 + i)
                if flush is not None and i % batch_calls == 0:
                    flush()
            if flush is not None:
                flush()
            us = (time.process_time() - c0) / len(reports) * 1e6
        await store.aclose()
        return us
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _rows(a: argparse.Namespace) -> dict[str, float]:
    feed = fleet_reports(1000)
    reports = [parse_status_report(next(feed)) for _ in range(a.reports)]
    best = float("inf")
    for _ in range(3):
        c0 = time.process_time()
        for report in reports:
            encode_record("status_report", DEFAULT_IDENTITY, report, "10.0.0.1", 1.7e9)
        best = min(best, time.process_time() - c0)
    rows = {"encode": best / len(reports) * 1e6, "per call": trio.run(_measure, reports, 0)}
    try:
        import workerhub.hubstate as hubstate

        batched = hasattr(hubstate, "AppendBatch")
    except ImportError:
        batched = False
    if batched:
        rows[f"batch {a.batch}"] = trio.run(_measure, reports, a.batch)
    return rows


def _compare(a: argparse.Namespace) -> None:
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    trees = {"this": here, "other": os.path.abspath(a.compare)}
    got: dict[str, dict[str, list[float]]] = {t: {} for t in trees}
    loads = []
    for rnd in range(a.rounds):
        for tree in ("this", "other") if rnd % 2 == 0 else ("other", "this"):
            out = subprocess.run(
                [sys.executable, os.path.abspath(__file__), "--reports", str(a.reports), "--batch", str(a.batch)],
                env=dict(os.environ, PYTHONPATH=trees[tree]), capture_output=True, text=True, check=True,
            ).stdout
            for name, us in re.findall(r"^\| (encode|per call|batch \d+) \| ([0-9.]+) \|", out, re.M):
                got[tree].setdefault(name, []).append(float(us))
            loads.append(os.getloadavg()[0])
    print(f"\n## CPU per journaled status_report (append), {a.rounds} alternating rounds of {a.reports}; "
          f"load average {min(loads):.1f}-{max(loads):.1f}\n")
    print(f"| row | {os.path.basename(trees['other'])} µs | this tree µs | ratio (rounds) |")
    print("|---|---:|---:|---|")
    for name, mine in got["this"].items():
        base = got["other"].get(name, got["other"]["per call"])
        ratios = [m / o for m, o in zip(mine, base)]
        print(f"| {name} | {statistics.median(base):.2f} | {statistics.median(mine):.2f} | "
              f"**{statistics.median(ratios):.2f}x** ({', '.join(f'{r:.2f}' for r in ratios)}) |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reports", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batch", type=int, default=70, help="calls per read batch (~70 replies fill a 16 KiB send)")
    ap.add_argument("--compare", metavar="SRC", help="another checkout to measure side by side with this tree")
    a = ap.parse_args()
    if a.compare:
        _compare(a)
        return
    print(f"load average {os.getloadavg()[0]:.2f}\n\n| row | µs CPU per append |\n|---|---:|")
    for name, us in _rows(a).items():
        print(f"| {name} | {us:.2f} |")


if __name__ == "__main__":
    main()
