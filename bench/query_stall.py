"""Does a large query stall everyone else? Ping and ingest latency while get_stats runs (issue 9 item 4).

A child process runs a real server (hypercorn on 127.0.0.1) whose hub is filled in process with
``--workers`` workers x ``--hours`` of reports at ``--cadence`` seconds (24 values each, written "now",
so retention keeps them). The parent then sends each query below over HTTP while a second thread
alternates ``debug.ping`` and ``workers.status_report`` calls; it prints, per query: HTTP status, answer
time and size, the worst and p99 latency of the pings/reports sent while the query ran, and the server's
RSS before and its peak (VmHWM).

* ``60s pooled``: cpu_usage, gpu_usage, memory_used (avg) at 60 s over the whole range;
* ``1s split``: cpu_usage (avg) split by variant at 1 s over the whole range (the issue's 353 MB answer).

``--before-src DIR`` also runs the same scenario against the workerhub package found in DIR (e.g. a
checkout of main) and prints both side by side.

    python bench/query_stall.py                          # 1,000 workers x 24 h (about a minute to fill)
    python bench/query_stall.py --workers 200 --hours 6  # quicker
    python bench/query_stall.py --before-src ../main     # before/after
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

import httpx

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _fleet import sample_pool, table  # noqa: E402 -- after the sys.path line that finds it


def _child(workers: int, hours: float, cadence: float) -> None:
    """Serve a filled hub until stdin closes; prints ``{"url", "fill_s"}`` once ready."""
    from workerhub.messages import DEFAULT_IDENTITY
    from workerhub.testing import running_server

    pool = sample_pool()
    with running_server(log_level="warning") as handle:

        def fill() -> tuple[float, float]:
            hub = handle.hub
            now = hub.clock.wall()
            company = hub._company(DEFAULT_IDENTITY)
            hs = [company.history(f"w{w:05d}") for w in range(workers)]
            reports = int(hours * 3600 / cadence)
            start_ms = int((now - hours * 3600) * 1000)
            t0 = time.perf_counter()
            for k in range(reports):
                ts = start_ms + int(k * cadence * 1000)
                for w, h in enumerate(hs):
                    h.add(ts + (w * 37) % 500, w % 3 != 0, pool[(k * 31 + w) % len(pool)], now)
            return time.perf_counter() - t0, now

        fill_s, now = handle.run_sync(fill)
        print(json.dumps({"url": handle.url, "fill_s": fill_s, "now": now}), flush=True)
        sys.stdin.read()  # until the parent closes it


def _rss(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of ``pid`` in MB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1]) // 1024
    return out["VmRSS"], out["VmHWM"]


def _pinger(url: str, stop: threading.Event, lat: list[tuple[float, float]], now_s: float) -> None:
    """Alternate debug.ping and status_report; record (sent at, latency ms)."""
    with httpx.Client(base_url=url, timeout=600) as c:
        k = 0
        while not stop.is_set():
            t = time.perf_counter()
            try:
                if k % 2:
                    stats = {"memory_used": 1.0}
                    body = {"worker": "pinger", "timestamp": int((now_s + k) * 1000), "machine_stats": stats}
                    c.post("/workers.status_report", json=body)
                else:
                    c.post("/debug.ping", json={})
            except httpx.TimeoutException:
                pass  # recorded below as the time it waited
            lat.append((t, (time.perf_counter() - t) * 1000))
            k += 1
            time.sleep(0.005)


def _scenario(src: str | None, args: argparse.Namespace) -> list[dict[str, Any]]:
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = os.path.abspath(src) + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, __file__, "--child", str(args.workers), str(args.hours), str(args.cadence)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        info = json.loads(proc.stdout.readline())
        url, now = info["url"], info["now"]
        lo, hi = now - args.hours * 3600, now
        queries = {
            "60s pooled": {
                "interval": 60,
                "items": [{"key": k, "aggregation": "avg"} for k in ("cpu_usage", "gpu_usage", "memory_used")],
            },
            "1s split": {"interval": 1, "items": [{"key": "cpu_usage"}], "split_by_variant": True},
        }
        rows = []
        with httpx.Client(base_url=url, timeout=600) as client:
            for label, q in queries.items():
                rss0, _ = _rss(proc.pid)
                lat: list[tuple[float, float]] = []
                stop = threading.Event()
                pinger = threading.Thread(target=_pinger, args=(url, stop, lat, now))
                pinger.start()
                time.sleep(0.3)
                t0 = time.perf_counter()
                r = client.post("/workers.get_stats", json={"from_date": lo, "to_date": hi, **q})
                t1 = time.perf_counter()
                time.sleep(0.1)
                stop.set()
                pinger.join()
                during = sorted(ms for at, ms in lat if at + ms / 1000 >= t0 and at <= t1) or [0.0]
                p99 = during[min(len(during) - 1, int(len(during) * 0.99))]
                _, hwm = _rss(proc.pid)
                rows.append(
                    {
                        "query": label,
                        "status": r.status_code,
                        "answer_s": round(t1 - t0, 2),
                        "answer_mb": round(len(r.content) / 1e6, 1),
                        "calls": len(during),
                        "max_ms": round(max(during), 1),
                        "p99_ms": round(p99, 1),
                        "median_ms": round(statistics.median(during), 1),
                        "rss_mb": rss0,
                        "peak_mb": hwm,
                        "msg": r.json()["meta"]["result_msg"][:90] if r.status_code != 200 else "",
                    }
                )
        rows.append({"query": "fill", "answer_s": round(info["fill_s"], 1)})
        return rows
    finally:
        if proc.stdin:
            proc.stdin.close()
        proc.wait(60)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=1000)
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--cadence", type=float, default=10.0, help="seconds between a worker's reports")
    ap.add_argument("--before-src", help="also run against the workerhub package in this directory")
    args = ap.parse_args()
    runs = [("before", args.before_src)] if args.before_src else []
    runs.append(("after", None))
    out = []
    for name, src in runs:
        for row in _scenario(src, args):
            if row["query"] == "fill":
                print(f"{name}: fill {row['answer_s']} s", file=sys.stderr)
                continue
            keys = ("query", "status", "answer_s", "answer_mb", "calls", "median_ms", "p99_ms", "max_ms", "rss_mb")
            out.append((name, *(row[k] for k in keys), row["peak_mb"]))
            if row["msg"]:
                print(f"{name} {row['query']}: {row['msg']}", file=sys.stderr)
    print(f"{args.workers} workers x {args.hours} h at {args.cadence} s; pings/status_reports during each query\n")
    header = ("code", "query", "HTTP", "answer s", "answer MB", "calls during", "median ms", "p99 ms",
              "max ms", "RSS MB before", "peak RSS MB")
    print(table(out, header))


if __name__ == "__main__":
    main()
