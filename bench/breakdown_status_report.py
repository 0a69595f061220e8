"""Where one workers.status_report spends its CPU, in process (no sockets, so much less noise).

Steps, each timed alone over the same realistic agent bodies (CPU time per report, median of rounds):
  parse        api.parse.parse_status_report (validation + machine_stats flattening)
  history.add  stats.WorkerHistory.add of the parsed samples
  hub          Hub.status_report of a parsed report (actor mailbox round trip + apply + history.add)
  dispatch     endpoints.dispatch of the raw body (parse + hub)
  HTTP app     the quart-trio app through quart's test client (no hypercorn, no sockets)
  HTTP app, trivial handler   the same app with status_report reduced to reading ``worker``
  reference    bench/reference_server.py's trivial handler through the same test client
The three HTTP apps take turns in slices of the same run.
The HTTP target (>= 0.85x the trivial handler) leaves ~15 % of the framework's cost for our code;
"HTTP app - reference" is what our code costs on top of the framework.

usage: python bench/breakdown_status_report.py [--reports 3000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import reference_server
import trio
from loadgen import fleet_reports

from workerhub.actors import open_hub
from workerhub.api import create_app, endpoints, parse
from workerhub.api.endpoints import CallContext, dispatch
from workerhub.config import Settings
from workerhub.stats.history import WorkerHistory


def _cpu_us(fn: Callable[[Any], None], items: list[Any]) -> float:
    c0 = time.process_time()
    for x in items:
        fn(x)
    return (time.process_time() - c0) / len(items) * 1e6


async def _acpu_us(fn: Callable[[Any], Awaitable[Any]], items: list[Any]) -> float:
    c0 = time.process_time()
    for x in items:
        await fn(x)
    return (time.process_time() - c0) / len(items) * 1e6


async def _round(n: int, seed: int) -> dict[str, float]:
    # Every step gets fresh reports, each agent's clock moving on, so no step re-sends timestamps an
    # earlier step stored (a late report takes the slower insert path).
    reports = fleet_reports(1000, seed=seed)

    def fresh() -> list[dict[str, Any]]:
        return [next(reports) for _ in range(n)]

    out: dict[str, float] = {"parse": _cpu_us(parse.parse_status_report, fresh())}
    histories: dict[str, WorkerHistory] = {}

    def add(r: Any) -> None:
        h = histories.get(r.worker)
        if h is None:
            h = histories[r.worker] = WorkerHistory()
        h.add(r.timestamp, r.task is not None, r.samples, 0.0)

    for b in fresh()[:1000]:  # each agent's first report creates its history: not the steady state
        add(parse.parse_status_report(b))
    out["history.add"] = _cpu_us(add, [parse.parse_status_report(b) for b in fresh()])
    ctx = CallContext()
    headers = {"Content-Type": "application/json"}
    async with open_hub(Settings()) as hub:
        for b in fresh()[:1000]:  # every agent registered: measure steady state, not spawning
            await dispatch(hub, "workers.status_report", b, ctx)
        out["hub"] = await _acpu_us(hub.status_report, [parse.parse_status_report(b) for b in fresh()])
        out["dispatch"] = await _acpu_us(lambda b: dispatch(hub, "workers.status_report", b, ctx), fresh())
        # The three HTTP apps take turns in small slices, so load changes on the machine hit them alike.
        app = create_app(hub).test_client()
        clients = {
            "HTTP app": app,
            "HTTP app, trivial handler": app,
            "reference": reference_server.app.test_client(),
        }
        real = endpoints.ENDPOINTS["workers.status_report"]
        spent = dict.fromkeys(clients, 0.0)
        slices = 10
        for _ in range(slices):
            for name, client in clients.items():
                raw = [orjson.dumps(b) for b in fresh()[: max(1, n // slices)]]
                if name == "HTTP app, trivial handler":  # swapped for this slice only
                    endpoints.ENDPOINTS["workers.status_report"] = endpoints.Endpoint(
                        _trivial_status_report, (2, 4)
                    )
                try:
                    spent[name] += await _acpu_us(
                        lambda b, client=client: client.post(
                            "/workers.status_report", data=b, headers=headers
                        ),
                        raw,
                    )
                finally:
                    endpoints.ENDPOINTS["workers.status_report"] = real
        out.update({name: total / slices for name, total in spent.items()})
    return out


async def _trivial_status_report(hub: Any, body: Any, ctx: Any) -> dict[str, Any]:
    _ = body["worker"]
    return {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reports", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    rounds = [trio.run(_round, a.reports, i) for i in range(a.rounds)]
    print(f"\n## status_report CPU breakdown, in process, {a.reports} reports x {a.rounds} rounds (median)\n")
    print("| step | CPU µs / report |")
    print("|---|---|")
    med = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    for k, v in med.items():
        print(f"| {k} | {v:.1f} |")
    print(
        f"| HTTP app - reference (all our code on top of the framework) | "
        f"{med['HTTP app'] - med['reference']:.1f} |"
    )
    print(
        f"| HTTP app, trivial handler - reference (our HTTP glue) | "
        f"{med['HTTP app, trivial handler'] - med['reference']:.1f} |"
    )
    print(
        f"\nreference / HTTP app CPU per report: {med['reference'] / med['HTTP app']:.2f}x (target >= 0.85x)"
    )


if __name__ == "__main__":
    main()
