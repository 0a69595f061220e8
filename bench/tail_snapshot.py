"""status_report tail latency with a big hub and a periodic snapshot in the window: this tree against a
baseline tree, side by side.

The server starts from a data directory that already holds ``--workers`` x ``--hours`` of history (default
1,000 x 24 h at 10 s, 24 series: ~1.1 GB of snapshot), with persistence on as in production (journal fsync
``interval``, the ``--writer`` snapshot writer, fork by default) and ``--snapshot-interval`` short enough
that one periodic snapshot is cut and written inside the measured window. As soon as ``/readyz`` answers
200, loadgen.py (pinned to core 1) sends status_reports in an *open loop* at ``--rate`` req/s (half the max
rate) from ``--agents`` agents that are not in the saved fleet and not registered first: the window also
holds the new fleet's first minute (an actor and a history per agent, and the full GC passes that growth
triggers). Latency is counted from each request's scheduled send time (no coordinated omission).

The server (pinned to core 0, as its forked snapshot child is) runs through gc_pauses.py, which records the
collector's passes and the event loop's longest stalls (task steps over 5 ms, with the task's name); the
server's log gives the snapshot's duration and how long requests were held for its cut (the journal
rotation and, with the fork writer, the fork). The fleet is built once (``_fleet.py``'s realistic reports
for one history, copied per worker as bench_snapshot.py does) and kept in ``--fleet-dir``; each run starts
from a hard link of it in a fresh directory (a snapshot is renamed into place, never written over).

    python bench/tail_snapshot.py --baseline ../base                  # 2 rounds, ~8 min
    python bench/tail_snapshot.py --baseline ../base --writer thread
    python bench/tail_snapshot.py --baseline ../base --workers 200 --rounds 1 --duration 40   # quick
    python bench/tail_snapshot.py --fork-cost                         # fork time against RSS, alone
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import _common as c
import httpx

_THIS = os.path.dirname(c.HERE)
_SNAPSHOT = "snapshot.msgpack"


def build_fleet(directory: str, workers: int, hours: float) -> None:
    """A snapshot of ``workers`` registered workers with ``hours`` of 10 s reports each, written offline."""
    from _fleet import START_MS, build

    from workerhub.hubstate import HubState, SavedWorker
    from workerhub.messages import DEFAULT_IDENTITY
    from workerhub.persistence.snapshot import write_snapshot
    from workerhub.stats import WorkerHistory

    reports = int(hours * 360)
    (one,), _us = build(WorkerHistory, 1, reports)
    frozen = one.to_state()
    end = START_MS / 1000 + reports * 10
    expires = time.time() + 30 * 86400  # registered well past any run (the server's clock is real time)
    states, histories = [], []
    for w in range(workers):
        histories.append(("workerhub", f"saved-{w:05d}", WorkerHistory.from_state(frozen).freeze()))
        states.append(SavedWorker(
            identity=DEFAULT_IDENTITY, id=f"saved-{w:05d}", ip="10.0.0.1", register_timeout=30 * 86400,
            register_time=end - 3600, last_activity_time=end, last_report_time=end, queues=(), queue=None,
            task=None, task_since=None, tags=None, system_tags=None, expires_at=expires,
        ))
    os.makedirs(directory, exist_ok=True)
    write_snapshot(directory, HubState(end, states, histories), 0)


def _prioritize(pid: int, nice: int) -> None:
    """Give process ``pid`` (the leader of its own session) niceness ``nice``, for its session's autogroup
    too: where the kernel groups tasks by session (sched_autogroup), a process's own niceness only ranks it
    within its session, and every other session on the machine gets an equal share of a core."""
    if not nice:
        return
    os.setpriority(os.PRIO_PROCESS, pid, nice)
    try:
        with open(f"/proc/{pid}/autogroup", "w") as f:
            f.write(str(nice))
    except OSError:
        pass  # no autogroups here: the process's niceness is what counts


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _wait_ready(url: str, proc: subprocess.Popen[str], timeout: float = 300.0) -> float:
    """Seconds until /readyz answers 200 (the saved state is loaded)."""
    t0 = time.perf_counter()
    with httpx.Client(timeout=5) as client:
        while time.perf_counter() - t0 < timeout:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
            try:
                if client.get(url + "/readyz").status_code == 200:
                    return time.perf_counter() - t0
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
    raise RuntimeError("the server did not become ready")


_SNAP_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) .*snapshot: .* in ([\d.]+) s, verified .*"
    r"requests held for the cut: ([\d.]+) ms", re.MULTILINE,
)


def _run(tree: str, fleet: str, a: argparse.Namespace) -> dict[str, Any]:
    """One server of ``tree`` started on a copy of the fleet, under load; loadgen's summary + server figures."""
    port = c.free_port()
    data = tempfile.mkdtemp(prefix="workerhub-tail-run-")
    try:
        try:
            os.link(os.path.join(fleet, _SNAPSHOT), os.path.join(data, _SNAPSHOT))
        except OSError:
            shutil.copy(os.path.join(fleet, _SNAPSHOT), data)
        env = {**os.environ, "PYTHONPATH": tree}
        cmd = [
            sys.executable, os.path.join(c.HERE, "gc_pauses.py"), str(port), "--persist", "--data-dir", data,
            "--snapshot-interval", str(a.snapshot_at), "--snapshot-writer", a.writer, "--journal-fsync", "interval",
            "--raw-retention", "1e10", "--tier-retention", "1e10", "--log-level", "info",
        ]
        if not a.unpinned:
            cmd = ["taskset", "-c", c.SERVER_CORE, *cmd]
        proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=bool(a.nice)
        )
        _prioritize(proc.pid, a.nice)
        try:
            url = f"http://127.0.0.1:{port}"
            c._wait_port(port, proc, timeout=60)
            ready_s = _wait_ready(url, proc)
            window = [time.time(), 0.0]
            rss_loaded = _rss_mb(proc.pid)
            gen = [
                sys.executable, os.path.join(c.HERE, "loadgen.py"), "http", "--url", url, "--rate", str(a.rate),
                "--duration", str(a.duration), "--warmup", "0", "--agents", str(a.agents), "--conns",
                str(a.conns), "--no-prime", "--timeline",
            ]
            if not a.unpinned:
                gen = ["taskset", "-c", c.LOADGEN_CORE, *gen]
            gen_proc = subprocess.Popen(
                gen, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=bool(a.nice)
            )
            _prioritize(gen_proc.pid, a.nice)
            stdout, stderr = gen_proc.communicate()
            if gen_proc.returncode != 0:
                raise RuntimeError(f"loadgen failed: {stderr[-2000:]}")
            out = subprocess.CompletedProcess(gen, 0, stdout, stderr)
            window[1] = time.time()
            result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
            result["rss_loaded_mb"], result["rss_end_mb"] = rss_loaded, _rss_mb(proc.pid)
            result["ready_s"] = ready_s
        finally:
            err, gcs = c.stop_gc_pauses(proc, 120)
    finally:
        shutil.rmtree(data, ignore_errors=True)
    # the window only: from ready to the end of the load (the load and the stop are not what is measured)
    inside = [(ms, task, cpu, where) for at, ms, task, cpu, where in gcs.get("stall_list", [])
              if window[0] <= at <= window[1]]
    result["stalls"] = sorted(inside, reverse=True)
    result["stalls_10"] = sum(1 for ms, *_rest in inside if ms > 10)
    result["stalls_50"] = sum(1 for ms, *_rest in inside if ms > 50)
    slow = [ms for at, ms in gcs.get("slow_writes", []) if window[0] <= at <= window[1]]
    result["slow_writes"] = (len(slow), max(slow, default=0.0), sum(slow))
    full = [ms for at, ms in gcs.get("full_list", []) if window[0] <= at <= window[1]]
    result["full"], result["longest_full_ms"] = len(full), max(full, default=0.0)
    # (seconds, cut ms, wall time it was done): the log's local time, as this process reads it
    snaps = [
        (float(m[3]), float(m[4]), time.mktime(time.strptime(m[1], "%Y-%m-%d %H:%M:%S")) + int(m[2]) / 1000)
        for m in _SNAP_LINE.finditer(err)
    ]
    # the first one is the periodic snapshot inside the window; a last one is the final snapshot at the stop
    result["snapshots"] = snaps
    timeline = result.pop("timeline", [])
    t0 = timeline[0][0] if timeline else 0.0
    writes = [(done - secs, done) for secs, _cut, done in snaps]  # each snapshot's cut .. verified
    phases: dict[str, list[float]] = {"first 10 s": [], "snapshot cut + write": [], "the rest": []}
    for sent, ms in timeline:
        if sent < t0 + 10:
            phases["first 10 s"].append(ms)
        elif any(lo <= sent <= hi for lo, hi in writes):
            phases["snapshot cut + write"].append(ms)
        else:
            phases["the rest"].append(ms)
    result["phases"] = {k: (len(v), _p99(v), sum(1 for x in v if x > 10)) for k, v in phases.items()}
    t0 = timeline[0][0] if timeline else 0.0
    buckets: dict[int, int] = {}
    for sent, ms in timeline:
        b = int((sent - t0) // 10)
        buckets[b] = buckets.get(b, 0) + (ms > 10)
    result["slow_per_10s"] = [buckets.get(i, 0) for i in range(max(buckets, default=-1) + 1)]
    first = [0] * 10
    for sent, ms in timeline:
        if sent - t0 < 10:
            first[int(sent - t0)] += ms > 10
    result["slow_first_10s"] = first
    per_s: dict[int, int] = {}
    for sent, ms in timeline:
        per_s[int(sent - t0)] = per_s.get(int(sent - t0), 0) + (ms > 10)
    result["slow_per_s"] = [per_s.get(i, 0) for i in range(max(per_s, default=-1) + 1)]
    # when each snapshot's cut and end fell, in seconds from the first request (for --verbose)
    result["snapshot_marks"] = [(round(lo - t0, 1), round(hi - t0, 1)) for lo, hi in writes]
    if not snaps or len(snaps) < 2:
        result["warning"] = f"expected a periodic and a final snapshot, the log shows {len(snaps)}"
    return result


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98] if len(values) > 1 else float("nan")


def fork_cost(sizes_gb: tuple[float, ...] = (0.5, 1, 2, 3)) -> None:
    """How long ``os.fork`` holds the caller as its RSS grows (1 MiB numpy chunks, as history arrays are):
    the kernel copies the page tables of every mapped page, and the cut holds requests for that long."""
    import numpy as np

    def timed() -> tuple[float, float]:
        wall, cpu = [], []
        for _ in range(5):
            t, c0 = time.perf_counter(), time.thread_time()
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            wall.append((time.perf_counter() - t) * 1000)
            cpu.append((time.thread_time() - c0) * 1000)
            os.waitpid(pid, 0)
        return statistics.median(wall), statistics.median(cpu)

    chunks: list[Any] = []
    print("| RSS MB | fork ms, wall (median of 5) | of which the caller's CPU ms |")
    print("|---:|---:|---:|")
    for gb in sizes_gb:
        while len(chunks) < gb * 1024:
            chunks.append(np.ones(1 << 17))
        wall, cpu = timed()
        print(f"| {_rss_mb(os.getpid()):.0f} | {wall:.1f} | {cpu:.1f} |", flush=True)


def _load() -> str:
    one, five, _fifteen = os.getloadavg()
    return f"{one:.1f}/{five:.1f}"


def _stalls(r: dict[str, Any], n: int = 3) -> str:
    return ", ".join(f"{ms:.0f} ({cpu:.0f}) {name}" for ms, name, cpu, _w in r.get("stalls", [])[:n]) or "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", help="source tree of the version to compare with (required unless --only this)")
    ap.add_argument("--writer", choices=("fork", "thread"), default="fork")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--duration", type=float, default=70.0)
    ap.add_argument("--rate", type=float, default=150.0, help="req/s scheduled (half the max rate)")
    ap.add_argument("--agents", type=int, default=1000)
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--workers", type=int, default=1000, help="workers in the saved fleet")
    ap.add_argument("--hours", type=float, default=24.0, help="hours of 10 s history per saved worker")
    ap.add_argument("--snapshot-at", type=float, default=20.0, help="snapshot_interval: the cut comes this long after the load")
    ap.add_argument("--fleet-dir", default=None, help="where the built fleet is kept (default: the temp dir)")
    ap.add_argument("--only", choices=("baseline", "this"), default=None, help="run one tree only")
    ap.add_argument("--unpinned", action="store_true")
    ap.add_argument(
        "--nice", type=int, default=0,
        help="run the server and the load generator each in its own session at this niceness, the session's "
             "autogroup too (e.g. -10, as root: on a machine shared with other jobs, the latency then measures "
             "this server rather than the scheduler's run queue)",
    )
    ap.add_argument("--verbose", action="store_true", help="list each run's longest stalls and where they ended")
    ap.add_argument("--fork-cost", action="store_true", help="only print fork time against RSS, then exit")
    a = ap.parse_args()
    if a.fork_cost:
        fork_cost()
        return
    if a.baseline is None and a.only != "this":
        ap.error("--baseline is required (or --only this)")
    fleet = a.fleet_dir or os.path.join(tempfile.gettempdir(), f"workerhub-tail-fleet-{a.workers}x{a.hours:g}h")
    if not os.path.exists(os.path.join(fleet, _SNAPSHOT)):
        t = time.perf_counter()
        build_fleet(fleet, a.workers, a.hours)
        print(f"built the fleet in {time.perf_counter() - t:.0f} s: {fleet}")
    size = os.path.getsize(os.path.join(fleet, _SNAPSHOT))
    trees = {"baseline": os.path.abspath(a.baseline or _THIS), "this": _THIS}
    if a.only:
        trees = {a.only: trees[a.only]}
    rows: dict[str, list[dict[str, Any]]] = {k: [] for k in trees}
    print(f"saved fleet {a.workers} x {a.hours:g} h ({size / 1e6:.0f} MB snapshot); {a.agents} new agents, "
          f"{a.rate:.0f} req/s open loop, {a.duration:.0f} s from ready; snapshot at {a.snapshot_at:g} s, "
          f"{a.writer} writer, journal fsync interval; {a.rounds} rounds; niceness {a.nice}")
    print("| round | tree | load 1/5 min | ready s | RSS MB | req/s | errors | p50 ms | p99 ms | max ms | "
          "snapshot s | cut ms | gc full | longest full ms | stalls > 10 / 50 ms | longest stalls (ms task) |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for rnd in range(a.rounds):
        order = list(trees) if rnd % 2 == 0 else list(reversed(trees))
        for name in order:
            load = _load()
            r = _run(trees[name], fleet, a)
            rows[name].append(r)
            snap_s, cut_ms, _at = r["snapshots"][0] if r["snapshots"] else (float("nan"), float("nan"), 0.0)
            print(
                f"| {rnd + 1} | {name} | {load} | {r['ready_s']:.1f} | {r['rss_loaded_mb']:.0f} | {r['rps']:.0f} | "
                f"{r['errors']} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['max_ms']:.0f} | {snap_s:.1f} | "
                f"{cut_ms:.0f} | {r.get('full', '?')} | {r.get('longest_full_ms', float('nan')):.0f} | "
                f"{r['stalls_10']} / {r['stalls_50']} | {_stalls(r)} |",
                flush=True,
            )
            by: dict[str, list[tuple[float, float]]] = {}
            for ms, task, cpu, _where in r["stalls"]:
                by.setdefault(task, []).append((ms, cpu))
            print("  stalls > 5 ms by task: " + "; ".join(
                f"{t} {len(v)} (max {max(ms for ms, _c in v):.0f}, total {sum(ms for ms, _c in v):.0f} ms, "
                f"CPU {sum(cpu for _m, cpu in v):.0f} ms)"
                for t, v in sorted(by.items(), key=lambda kv: -sum(ms for ms, _c in kv[1]))
            ), flush=True)
            print("  p99 ms (requests, over 10 ms) by phase: " + "; ".join(
                f"{k} {p99:.1f} ({n}, {slow})" for k, (n, p99, slow) in r.get("phases", {}).items()
            ) + "; requests over 10 ms per 10 s: " + " ".join(map(str, r["slow_per_10s"]))
                + " (the first 10 s per second: " + " ".join(map(str, r["slow_first_10s"])) + ")", flush=True)
            n, top, total = r["slow_writes"]
            print(f"  journal appends over 2 ms: {n} (max {top:.0f} ms, total {total:.0f} ms)", flush=True)
            if a.verbose:
                print(f"  requests over 10 ms per second: {' '.join(map(str, r['slow_per_s']))}; snapshots "
                      f"(cut, verified) at {r['snapshot_marks']} s")
                for ms, task, cpu, where in r["stalls"][:12]:
                    print(f"  stall {ms:.0f} ms ({cpu:.0f} ms CPU) in {task}, step ending at {where}")
            if "warning" in r:
                print(f"  warning: {r['warning']}", flush=True)
    for name, rs in rows.items():
        med = {k: statistics.median(r[k] for r in rs) for k in ("p50_ms", "p99_ms", "max_ms")}
        print(f"| median | {name} | | | | | | {med['p50_ms']:.1f} | {med['p99_ms']:.1f} | {med['max_ms']:.0f} "
              "| | | | | | |")
    if len(rows) == 2:
        b, t = (statistics.median(r["p99_ms"] for r in rows[k]) for k in ("baseline", "this"))
        print(f"p99 baseline / this: {b / t:.2f}x")


if __name__ == "__main__":
    main()
