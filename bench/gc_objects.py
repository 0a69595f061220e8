"""GC-tracked objects per worker: a hub fed N agents' reports in-process (no HTTP), counted with gc.

What the cyclic collector walks on a full pass is every tracked object; this prints how many a worker
adds (its actor, its history), with the history alone split out, after ``--reports`` reports per agent
(default 360: one hour at 10 s; 8,640 is 24 h).

usage: python bench/gc_objects.py [--agents 1000] [--reports 360]
"""

from __future__ import annotations

import argparse
import gc

import trio
from loadgen import fleet_reports

from workerhub.actors import open_hub
from workerhub.api.parse import parse_status_report
from workerhub.config import Settings
from workerhub.stats.history import WorkerHistory


def _tracked() -> int:
    gc.collect()
    return len(gc.get_objects())


async def _hub_objects(agents: int, reports: int) -> tuple[float, int]:
    settings = Settings(persist=False)
    async with open_hub(settings) as hub:
        feed = fleet_reports(agents)
        await trio.sleep(0)
        before = _tracked()
        for i in range(agents * reports):
            await hub.status_report(parse_status_report(next(feed)))
            if i % 1000 == 0:
                await trio.sleep(0)
        await trio.sleep(0.1)
        after = _tracked()
        hub_nursery_cancel = after - before
        return hub_nursery_cancel / agents, agents


def _history_objects(agents: int, reports: int) -> float:
    feed = fleet_reports(agents)
    before = _tracked()
    hs: dict[str, WorkerHistory] = {}
    for _ in range(agents * reports):
        r = parse_status_report(next(feed))
        h = hs.get(r.worker)
        if h is None:
            h = hs[r.worker] = WorkerHistory()
        h.add(r.timestamp, r.task is not None, r.samples, written_at=0.0)
    after = _tracked()
    return (after - before) / agents


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", type=int, default=1000)
    ap.add_argument("--reports", type=int, default=360)
    a = ap.parse_args()
    per_worker, n = trio.run(_hub_objects, a.agents, a.reports)
    per_history = _history_objects(a.agents, a.reports)
    print("| agents | reports each | tracked objects per worker (hub) | of which its history |")
    print("|---:|---:|---:|---:|")
    print(f"| {n:,} | {a.reports:,} | {per_worker:.1f} | {per_history:.1f} |")


if __name__ == "__main__":
    main()
