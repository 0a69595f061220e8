"""How fast the test kit is: server startup, reset() and advance_clock() with 1,000 workers.

Run: ``python bench/bench_testing.py [--runs N] [--workers W]``. Prints one table; times in milliseconds.

- startup: from the ``running_server()`` call to the first answered request (``debug.ping`` over HTTP),
  in this process after the imports (what a test suite pays per server); and ``cold``: a fresh interpreter,
  from before ``import workerhub.testing`` to the first answer (what a one-off script pays).
- reset: ``ServerHandle.reset()`` from the test's thread with W registered workers holding stats (state
  cleared when it returns); then until the retired worker tasks have ended; ``hub.reset()`` alone on the
  server's thread for comparison.
- expire: ``advance_clock()`` past the timeout of W workers, until every worker task has stopped.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from workerhub import RegisterRequest, StatusReport
from workerhub.stats.flatten import flatten_machine_stats
from workerhub.testing import ServerHandle, running_server

_COLD = """
import time
t0 = time.perf_counter()
from workerhub.testing import running_server
with running_server() as s:
    s.client.call("debug.ping")
    print((time.perf_counter() - t0) * 1000)
"""


def _fill(server: ServerHandle, workers: int) -> None:
    hub = server.hub
    samples = flatten_machine_stats({"cpu_usage": [10, 20], "memory_used": 1024, "gpu_usage": [50]})

    async def fill() -> None:
        for i in range(workers):
            await hub.register(RegisterRequest(worker=f"w{i}", timeout=600, queues=("default",)))
            for k in range(3):
                await hub.status_report(
                    StatusReport(worker=f"w{i}", timestamp=1_700_000_000_000 + k * 10_000, samples=samples)
                )

    server.run(fill)
    assert server.statistics()["workers"] == workers


def _ms(samples: list[float]) -> tuple[str, str, str]:
    return (
        f"{statistics.median(samples) * 1000:.2f}",
        f"{max(samples) * 1000:.2f}",
        f"{min(samples) * 1000:.2f}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="repetitions per measurement")
    parser.add_argument("--workers", type=int, default=1000, help="workers registered for reset/expire")
    parser.add_argument("--cold-runs", type=int, default=3, help="fresh-interpreter startups")
    args = parser.parse_args()

    rows: list[tuple[str, str, str, str, str]] = []

    startup: list[float] = []
    stop: list[float] = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        with running_server() as server:
            server.client.call("debug.ping")
            startup.append(time.perf_counter() - t0)
            t1 = time.perf_counter()
        stop.append(time.perf_counter() - t1)
    rows.append(("startup to first answer (in process)", *_ms(startup), "300"))
    rows.append(("stop (leaving the with block)", *_ms(stop), "-"))

    cold = []
    for _ in range(args.cold_runs):
        out = subprocess.run([sys.executable, "-c", _COLD], capture_output=True, text=True, check=True).stdout
        cold.append(float(out) / 1000)
    rows.append(("startup cold (fresh interpreter, incl. imports)", *_ms(cold), "-"))

    reset: list[float] = []
    quiet: list[float] = []
    hub_reset: list[float] = []
    expire: list[float] = []
    with running_server() as server:
        for _ in range(args.runs):
            _fill(server, args.workers)
            server.settle()
            t0 = time.perf_counter()
            server.reset()
            reset.append(time.perf_counter() - t0)
            server.settle()
            quiet.append(time.perf_counter() - t0)
            assert server.statistics() == {"companies": 0, "workers": 0, "histories": 0, "reports": 0}

            _fill(server, args.workers)

            def timed_reset() -> float:
                t = time.perf_counter()
                server.hub.reset()
                return time.perf_counter() - t

            hub_reset.append(server.run_sync(timed_reset))
            server.settle()  # let the retired tasks finish before the next round

            _fill(server, args.workers)
            t0 = time.perf_counter()
            server.advance_clock(601)
            expire.append(time.perf_counter() - t0)
            assert server.statistics()["workers"] == 0
            server.reset()
            server.settle()
    rows.append((f"reset() with {args.workers} workers + stats", *_ms(reset), "10"))
    rows.append((f"  ... until its {args.workers} worker tasks have ended", *_ms(quiet), "-"))
    rows.append((f"hub.reset() alone ({args.workers} workers)", *_ms(hub_reset), "-"))
    rows.append((f"advance_clock() expiring {args.workers} workers", *_ms(expire), "-"))

    header = ("measurement", "median ms", "max ms", "min ms", "target ms")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print(f"workerhub test kit, {args.runs} runs each ({args.cold_runs} cold), python {sys.version.split()[0]}")
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))))


if __name__ == "__main__":
    main()
