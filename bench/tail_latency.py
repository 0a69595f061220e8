"""status_report tail latency over the fleet's first minute: this tree against a baseline tree, side by side.

Each round starts a fresh server per tree (``--no-persist``, pinned to core 0, run through gc_pauses.py so
the collector's pauses are counted) and drives it with loadgen.py (pinned to core 1) in an *open loop* at
``--rate`` req/s from ``--agents`` agents that are **not** registered first: the window starts with an
empty hub, so it includes the fleet's growth (an actor and a history per new agent) and the full GC passes
that growth triggers. Latency is counted from each request's scheduled send time (no coordinated omission).
The trees run one after the other, their order alternating by round; the table shows every round and the
medians. ``--baseline`` is another checkout of workerhub (e.g. ``git worktree add ../base main``).

usage: python bench/tail_latency.py --baseline DIR [--rounds 3] [--duration 70] [--rate 150] [--agents 1000]
                                    [--unpinned]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from typing import Any

import _common as c

_THIS = os.path.dirname(c.HERE)


def _run(tree: str, a: argparse.Namespace) -> dict[str, Any]:
    """One fresh server of ``tree`` under load; loadgen's summary plus the server's GC figures."""
    port = c.free_port()
    env = {**os.environ, "PYTHONPATH": tree}
    cmd = [sys.executable, os.path.join(c.HERE, "gc_pauses.py"), str(port)]
    if not a.unpinned:
        cmd = ["taskset", "-c", c.SERVER_CORE, *cmd]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        c._wait_port(port, proc)
        gen = [
            sys.executable, os.path.join(c.HERE, "loadgen.py"), "http", "--url", f"http://127.0.0.1:{port}",
            "--rate", str(a.rate), "--duration", str(a.duration), "--warmup", "0", "--agents", str(a.agents),
            "--conns", str(a.conns), "--no-prime",
        ]
        if not a.unpinned:
            gen = ["taskset", "-c", c.LOADGEN_CORE, *gen]
        out = subprocess.run(gen, capture_output=True, text=True, check=True, env=env)
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        _err, gcs = c.stop_gc_pauses(proc, 30)
    result.update(gcs)
    return result


def _load() -> str:
    one, five, _fifteen = os.getloadavg()
    return f"{one:.1f}/{five:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", required=True, help="source tree of the version to compare with")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=70.0)
    ap.add_argument("--rate", type=float, default=150.0, help="req/s scheduled (half the max rate)")
    ap.add_argument("--agents", type=int, default=1000)
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--unpinned", action="store_true")
    a = ap.parse_args()
    trees = {"baseline": os.path.abspath(a.baseline), "this": _THIS}
    rows: dict[str, list[dict[str, Any]]] = {k: [] for k in trees}
    print(f"{a.agents} agents from an empty hub, {a.rate:.0f} req/s open loop, {a.duration:.0f} s, {a.rounds} rounds")
    print("| round | tree | load 1/5 min | req/s | errors | p50 ms | p99 ms | max ms | gc passes | full | "
          "longest full ms (CPU ms) | pauses > 10 ms | GC CPU ms total | tracked at exit | frozen |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for rnd in range(a.rounds):
        order = list(trees) if rnd % 2 == 0 else list(reversed(trees))
        for name in order:
            load = _load()
            r = _run(trees[name], a)
            rows[name].append(r)
            print(
                f"| {rnd + 1} | {name} | {load} | {r['rps']:.0f} | {r['errors']} | {r['p50_ms']:.1f} | "
                f"{r['p99_ms']:.1f} | {r['max_ms']:.0f} | {r.get('passes', '?')} | {r.get('full', '?')} | "
                f"{r.get('longest_full_ms', float('nan')):.0f} ({r.get('longest_full_cpu_ms', float('nan')):.0f}) | "
                f"{r.get('over_10ms', '?')} | {r.get('gc_cpu_ms_total', float('nan')):.0f} | "
                f"{r.get('tracked', '?')} | {r.get('frozen', '?')} |",
                flush=True,
            )
    for name, rs in rows.items():
        med = {k: statistics.median(r[k] for r in rs) for k in ("p50_ms", "p99_ms", "max_ms")}
        print(f"| median | {name} | | | | {med['p50_ms']:.1f} | {med['p99_ms']:.1f} | {med['max_ms']:.0f} | | | | | | | |")
    b, t = (statistics.median(r["p99_ms"] for r in rows[k]) for k in ("baseline", "this"))
    print(f"p99 baseline / this: {b / t:.2f}x")


if __name__ == "__main__":
    main()
