"""Where a status_report's server CPU goes below the transport: cProfile of N calls through run_call.

Runs a hub in-process (``--no-persist`` equivalent: the memory store) and sends ``--reports`` realistic
agent reports (loadgen.py's bodies, msgpack-decoded as the stream hands them over) through
:func:`workerhub.api.pipeline.run_call`, as the stream does, after one first report per agent. Prints µs per
call and the top functions by own time, so the stream's per-report cost can be split by module.

usage: python bench/profile_status_report.py [--agents 1000] [--reports 20000] [--top 25]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time

import msgpack
import trio
from loadgen import fleet_reports

from workerhub.actors import open_hub
from workerhub.api.pipeline import run_call
from workerhub.config import Settings
from workerhub.messages import DEFAULT_IDENTITY, Identity


async def _drive(agents: int, reports: int, top: int) -> None:
    async with open_hub(Settings(persist=False)) as hub:
        hub.readiness.loaded()
        feed = fleet_reports(agents)
        bodies = [msgpack.unpackb(msgpack.packb(next(feed))) for _ in range(agents + reports)]

        def identify(name: str) -> Identity:
            return DEFAULT_IDENTITY

        for body in bodies[:agents]:
            await run_call(hub, "workers.status_report", identify=identify, decode=lambda b=body: b, ip="x")
        half = agents + reports // 2
        t0 = time.process_time()
        for body in bodies[agents:half]:
            await run_call(hub, "workers.status_report", identify=identify, decode=lambda b=body: b, ip="x")
        plain = (time.process_time() - t0) / (half - agents)
        prof = cProfile.Profile()
        t0 = time.process_time()
        prof.enable()
        for body in bodies[half:]:
            await run_call(hub, "workers.status_report", identify=identify, decode=lambda b=body: b, ip="x")
        prof.disable()
        cpu = (time.process_time() - t0) / (len(bodies) - half)
        print(f"status_report through run_call: {plain * 1e6:.1f} µs CPU each; {cpu * 1e6:.1f} µs under cProfile")
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
        print(out.getvalue())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", type=int, default=1000)
    ap.add_argument("--reports", type=int, default=20000)
    ap.add_argument("--top", type=int, default=25)
    a = ap.parse_args()
    trio.run(_drive, a.agents, a.reports, a.top)


if __name__ == "__main__":
    main()
