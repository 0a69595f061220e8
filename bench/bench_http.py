"""HTTP workers.status_report: workerhub against the framework ceiling, side by side, plus latency.

Each round starts both servers fresh, both pinned to core 0, and drives each with its own loadgen.py
(both pinned to core 1) at the same time: 32 keep-alive connections each, closed loop, realistic agent
bodies (1,000 agents, each registered by a first report before the clock starts). Running both at once
means whatever else the machine runs hits them alike, and the scheduler gives each half the core, so the
req/s ratio is the ratio of their CPU cost per request. ``--alternate`` measures them one after the
other instead (the ceilings method; needs a quiet machine). Medians over rounds, and the per-round
ratio. Then latency, each server alone: an open loop at half workerhub's median max rate, p50/p99
counted from the scheduled send time.

usage: python bench/bench_http.py [--rounds 5] [--duration 10] [--conns 32] [--latency-duration 15]
                                  [--agents 1000] [--alternate] [--unpinned]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics

import _common as c

SERVERS = ("reference", "workerhub")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--agents", type=int, default=1000)
    ap.add_argument("--latency-duration", type=float, default=15.0)
    ap.add_argument("--unpinned", action="store_true")
    ap.add_argument(
        "--alternate",
        action="store_true",
        help="measure the servers one after the other instead of both at once",
    )
    a = ap.parse_args()
    pin = not a.unpinned
    rows: dict[str, list[dict]] = {s: [] for s in SERVERS}
    ratios: list[float] = []

    def args(srv: dict, extra: list[str]) -> list[str]:
        return [
            "http",
            "--url",
            srv["http"],
            "--conns",
            str(a.conns),
            "--warmup",
            str(a.warmup),
            "--agents",
            str(a.agents),
            *extra,
        ]

    for rnd in range(a.rounds):
        if a.alternate:
            order = SERVERS if rnd % 2 == 0 else SERVERS[::-1]
            for kind in order:
                with c.server(kind, pin=pin) as srv:
                    r = c.load(srv["pid"], args(srv, ["--duration", str(a.duration)]), pin=pin)
                r.update(server=kind, round=rnd)
                rows[kind].append(r)
                print(json.dumps(r), flush=True)
        else:
            # Both servers at once, on the same core, each with its own load generator: whatever else
            # the machine runs hits both alike, and the scheduler splits the core evenly between them.
            with c.server("reference", pin=pin) as ref, c.server("workerhub", pin=pin) as wh:
                servers = {"reference": ref, "workerhub": wh}
                # Both prime first (separately timed windows would overlap badly), then measure together.
                results = c.load_together(
                    [(s["pid"], args(s, ["--duration", str(a.duration)])) for s in servers.values()], pin=pin
                )
            for kind, r in zip(servers, results):
                r.update(server=kind, round=rnd)
                rows[kind].append(r)
                print(json.dumps(r), flush=True)
        ratios.append(rows["workerhub"][-1]["rps"] / rows["reference"][-1]["rps"])

    target_rate = 0.5 * c.median(rows["workerhub"], "rps")
    lat: dict[str, list[dict]] = {s: [] for s in SERVERS}
    for kind in SERVERS:
        with c.server(kind, pin=pin) as srv:
            args = [
                "http",
                "--url",
                srv["http"],
                "--conns",
                str(a.conns),
                "--duration",
                str(a.latency_duration),
                "--warmup",
                str(a.warmup),
                "--agents",
                str(a.agents),
                "--rate",
                f"{target_rate:.1f}",
            ]
            r = c.load(srv["pid"], args, pin=pin)
        r.update(server=kind, rate=target_rate)
        lat[kind].append(r)
        print(json.dumps(r), flush=True)

    where = "server core 0 / loadgen core 1" if pin else "unpinned"
    where += ", servers one after the other" if a.alternate else ", both servers at once sharing the core"
    print(
        f"\n## HTTP status_report, {a.rounds} interleaved rounds x {a.duration:.0f} s, {a.conns} keep-alive "
        f"connections, {a.agents} agents, {where}\n"
    )
    print("| server | req/s (median) | req/s range | server CPU util | server CPU µs/req | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|---|")
    for kind in SERVERS:
        rs = rows[kind]
        print(
            f"| {kind} | {c.median(rs, 'rps'):.0f} | {c.spread(rs, 'rps')} | {c.median(rs, 'server_cpu_util'):.2f} "
            f"| {c.median(rs, 'server_cpu_us_per_req'):.0f} | {c.median(rs, 'p50_ms'):.1f} | "
            f"{c.median(rs, 'p99_ms'):.1f} |"
        )
    cpu_ratio = c.median(rows["reference"], "server_cpu_us_per_req") / c.median(
        rows["workerhub"], "server_cpu_us_per_req"
    )
    print(
        f"\nworkerhub / reference req/s: median of per-round ratios **{statistics.median(ratios):.2f}x** "
        f"(rounds: {', '.join(f'{x:.2f}' for x in ratios)}; target >= 1.0x, issue #12)"
    )
    print(
        f"workerhub / reference by server CPU per request (the rate ratio on one saturated core): "
        f"**{cpu_ratio:.2f}x**"
    )
    print(f"load average (1, 5, 15 min) at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    print(
        f"Latency, open loop at {target_rate:.0f} req/s (half workerhub's median max), {a.latency_duration:.0f} s:\n"
    )
    print("| server | achieved req/s | p50 ms | p99 ms | server CPU util |")
    print("|---|---|---|---|---|")
    for kind in SERVERS:
        r = lat[kind][0]
        print(
            f"| {kind} | {r['rps']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['server_cpu_util']:.2f} |"
        )
    print("\n(target: workerhub p99 <= 25 ms)")


if __name__ == "__main__":
    main()
