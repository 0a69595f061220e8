"""msgpack stream vs HTTP: workers.status_report rate on one server core, in the same run.

Each round starts one workerhub (pinned to core 0, HTTP and stream ports open) and measures, in turn:
HTTP status_report (32 keep-alive connections, JSON, closed loop) and stream status_report (one
connection, pipelined, ``--window`` calls in flight), both with realistic agent bodies; then stream
debug.ping (no body, no hub work) as the transport's own ceiling. The load generator runs on core 1.
Medians over rounds, and the median of the per-round ratios.

``--baseline SRC`` also runs a server from another checkout (SRC: its repository root, e.g. a worktree of
main) in every round, the two trees in alternating order, the stream cases only, and prints both trees' CPU
per call side by side with the per-round ratios.

usage: python bench/bench_stream.py [--rounds 5] [--duration 8] [--window 256] [--stream-only]
                                    [--baseline SRC]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import _common as c

CASES = ("http status_report", "stream status_report", "stream debug.ping")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=float, default=8.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--window", type=int, default=256)
    ap.add_argument("--agents", type=int, default=1000)
    ap.add_argument("--unpinned", action="store_true")
    ap.add_argument("--stream-only", action="store_true", help="skip the HTTP case (no stream/HTTP ratio)")
    ap.add_argument("--baseline", metavar="SRC", help="another checkout to run side by side (stream cases)")
    a = ap.parse_args()
    if a.baseline:
        _compare(a)
        return
    pin = not a.unpinned
    rows: dict[str, list[dict]] = {k: [] for k in CASES}
    ratios: list[float] = []
    common = ["--duration", str(a.duration), "--warmup", str(a.warmup), "--agents", str(a.agents)]
    for rnd in range(a.rounds):
        with c.server("workerhub", pin=pin, stream=True) as srv:
            order = CASES if rnd % 2 == 0 else (CASES[1], CASES[0], CASES[2])
            for case in order:
                if a.stream_only and case.startswith("http"):
                    continue
                if case.startswith("http"):
                    args = ["http", "--url", srv["http"], "--conns", str(a.conns), *common]
                else:
                    call = {"status_report": "workers.status_report"}.get(case.split()[1], case.split()[1])
                    args = [
                        "stream",
                        "--url",
                        srv["stream"],
                        "--window",
                        str(a.window),
                        "--call",
                        call,
                        *common,
                    ]
                r = c.load(srv["pid"], args, pin=pin)
                r.update(case=case, round=rnd)
                rows[case].append(r)
                print(json.dumps(r), flush=True)
        if not a.stream_only:
            ratios.append(rows[CASES[1]][-1]["rps"] / rows[CASES[0]][-1]["rps"])

    where = "server core 0 / loadgen core 1" if pin else "unpinned"
    print(f"\n## stream vs HTTP, {a.rounds} rounds x {a.duration:.0f} s, {where}, window {a.window}\n")
    print(
        "| case | req/s (median) | req/s range | server CPU util | server CPU µs/req | req/s per busy server core |"
    )
    print("|---|---|---|---|---|---|")
    for case in CASES:
        rs = rows[case]
        if not rs:
            continue
        us = c.median(rs, "server_cpu_us_per_req")
        print(
            f"| {case} | {c.median(rs, 'rps'):.0f} | {c.spread(rs, 'rps')} | "
            f"{c.median(rs, 'server_cpu_util'):.2f} | {us:.1f} | {1e6 / us:.0f} |"
        )
    print(f"\nload average (1, 5, 15 min) at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    sr_us = c.median(rows[CASES[1]], "server_cpu_us_per_req")
    print(
        f"stream status_report: **{sr_us:.1f} µs** of server CPU per call = {1e6 / sr_us:,.0f} per busy core "
        "(target <= 40 µs, >= 25,000/s)"
    )
    if a.stream_only:
        return
    cpu_ratio = c.median(rows[CASES[0]], "server_cpu_us_per_req") / c.median(
        rows[CASES[1]], "server_cpu_us_per_req"
    )
    print(
        f"\nstream / HTTP status_report req/s: median of per-round ratios **{statistics.median(ratios):.1f}x** "
        f"(rounds: {', '.join(f'{x:.1f}' for x in ratios)}; target >= 10x)"
    )
    print(
        f"stream / HTTP status_report by server CPU per request (the rate ratio on one saturated core): "
        f"**{cpu_ratio:.1f}x**"
    )
    print(
        "(server CPU util well below 1.00 means the server was starved of CPU by other processes, or idle; "
        "then the CPU-cost ratio is the one to trust)"
    )


@contextmanager
def _server_of(src: str | None, pin: bool) -> Iterator[dict[str, Any]]:
    """A workerhub server (HTTP and stream) whose code is the checkout at ``src`` (None: this one)."""
    with ExitStack() as stack:
        old = os.environ.get("PYTHONPATH")
        if src is not None:
            os.environ["PYTHONPATH"] = src  # the server process imports workerhub from there
        try:
            srv = stack.enter_context(c.server("workerhub", pin=pin, stream=True))
        finally:
            if old is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = old
        yield srv


def _compare(a: argparse.Namespace) -> None:
    pin = not a.unpinned
    trees = {"this tree": None, os.path.basename(os.path.abspath(a.baseline)): os.path.abspath(a.baseline)}
    cases = {"stream status_report": "workers.status_report", "stream debug.ping": "debug.ping"}
    got: dict[tuple[str, str], list[dict[str, Any]]] = {(t, k): [] for t in trees for k in cases}
    common = ["--duration", str(a.duration), "--warmup", str(a.warmup), "--agents", str(a.agents)]
    loads = []
    for rnd in range(a.rounds):
        for tree in list(trees) if rnd % 2 == 0 else list(trees)[::-1]:
            with _server_of(trees[tree], pin) as srv:
                for case, call in cases.items():
                    args = ["stream", "--url", srv["stream"], "--window", str(a.window), "--call", call, *common]
                    r = c.load(srv["pid"], args, pin=pin)
                    r.update(case=case, round=rnd, tree=tree)
                    got[(tree, case)].append(r)
                    loads.append(os.getloadavg()[0])
                    print(json.dumps(r), flush=True)
    this, other = list(trees)
    print(
        f"\n## stream, this tree and {other} side by side, {a.rounds} rounds x {a.duration:.0f} s, window "
        f"{a.window}; load average {min(loads):.1f}-{max(loads):.1f}\n"
    )
    print(f"| case | {other} µs/req (util) | this tree µs/req (util) | ratio (rounds) |")
    print("|---|---|---|---|")
    for case in cases:
        mine, base = got[(this, case)], got[(other, case)]
        ratios = [m["server_cpu_us_per_req"] / b["server_cpu_us_per_req"] for m, b in zip(mine, base)]
        print(
            f"| {case} | {c.median(base, 'server_cpu_us_per_req'):.1f} ({c.median(base, 'server_cpu_util'):.2f}) "
            f"| {c.median(mine, 'server_cpu_us_per_req'):.1f} ({c.median(mine, 'server_cpu_util'):.2f}) "
            f"| **{statistics.median(ratios):.2f}x** ({', '.join(f'{x:.2f}' for x in ratios)}) |"
        )


if __name__ == "__main__":
    main()
