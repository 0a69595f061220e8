"""Cold start: time from exec to the first successful get_stats, and RSS after load, vs the hub built live.

The fleet (default 1,000 workers x 24 h at a 10 s cadence, 24 values per report: ``_fleet.build``, the
ingest path the actors call) is built once, in a child process that imports the whole server stack first;
that child reports its RSS growth while building (the histories *built live*) and writes the snapshot
into a temp data directory, with every worker registered well past the run.

Then, for several rounds, each tree (this one, and ``--baseline PATH``: another checkout, e.g. a
``git worktree add`` of main, run with the same interpreter) is started as ``python -m workerhub serve
--data-dir D`` and timed from exec to the first 200 of a fleet-wide get_stats (polled every 10 ms while
the connection is refused, before the listener is up, then every 50 ms while it answers 503 during the load). Its RSS is read from
``/proc/<pid>/status`` right after that answer. The *live* reference is the RSS of the same server on
an empty data directory plus the builder's RSS growth: a hub that received the same reports.

    python bench/cold_start.py                                  # 1,000 x 24 h, 3 rounds
    python bench/cold_start.py --baseline ../main-checkout      # before/after in one run
    python bench/cold_start.py --workers 100 --hours 6          # quick
    python bench/cold_start.py --keep DIR                       # build into DIR once, reuse it next time

Loopback only; each server is killed (SIGKILL: no final snapshot, so every round reads the same file).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _common import cpu_seconds, free_port  # noqa: E402
from _fleet import START_MS, table  # noqa: E402

_RETENTION = "1e10"  # the fleet's write times are in 2023: keep all of it, as the live hub did


def _proc_status(pid: int) -> dict[str, int]:
    """VmRSS / RssAnon / RssFile / VmHWM of ``pid`` in bytes."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                out[key] = int(rest.split()[0]) * 1024
    return out


def _self_rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def build_child(directory: str, workers: int, hours: float) -> None:
    """(Child process.) Build the fleet live, report RSS growth, write the snapshot into ``directory``."""
    import gc

    from _fleet import build, sample_pool

    import workerhub.server  # noqa: F401 -- the serving process's modules are loaded before the baseline
    from workerhub.hubstate import HubState, SavedWorker
    from workerhub.messages import DEFAULT_IDENTITY
    from workerhub.persistence.snapshot import write_snapshot
    from workerhub.stats import WorkerHistory

    pool = sample_pool()
    WorkerHistory().add(0, False, pool[0], 0.0)  # first-use allocations before the baseline
    gc.collect()
    before = _self_rss()
    t = time.perf_counter()
    histories, _us = build(WorkerHistory, workers, int(hours * 360), pool=pool)
    built_s = time.perf_counter() - t
    gc.collect()
    growth = _self_rss() - before
    now = time.time()
    last = START_MS / 1000 + hours * 3600
    saved = [
        SavedWorker(
            DEFAULT_IDENTITY, f"w{w}", "10.0.0.1", 86400 * 365, last - 100, last - 10, last - 10, (), None, None,
            None, None, None, now + 86400 * 365,
        )
        for w in range(workers)
    ]
    state = HubState(now, saved, [("workerhub", f"w{w}", h.freeze()) for w, h in enumerate(histories)])
    info = write_snapshot(directory, state, 0)
    values = sum(len(h) for h in histories) * sum(len(p) for p in pool) / len(pool)
    print(json.dumps({"growth": growth, "values": values, "built_s": built_s, "size": info.size}))


def _get_stats_body(hours: float) -> bytes:
    lo = START_MS // 1000
    return json.dumps(
        {
            "from_date": lo,
            "to_date": lo + int(hours * 3600),
            "interval": 3600,
            "items": [{"key": "cpu_usage", "aggregation": "avg"}],
        }
    ).encode()


def _post(url: str, body: bytes) -> tuple[int, bytes]:
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def start_once(tree: str | None, data_dir: str, hours: float) -> dict[str, Any]:
    """Start the server of ``tree`` (None: this checkout) on ``data_dir``; time to the first get_stats 200."""
    port = free_port()
    env = dict(os.environ)
    cwd = None
    if tree is not None:
        env["PYTHONPATH"] = os.path.abspath(tree)
        cwd = os.path.abspath(tree)
    cmd = [
        sys.executable, "-m", "workerhub", "serve", "--host", "127.0.0.1", "--port", str(port),
        "--data-dir", data_dir, "--raw-retention", _RETENTION, "--tier-retention", _RETENTION,
        "--snapshot-interval", "1e9", "--log-level", "warning", "--no-dashboard",
    ]
    url = f"http://127.0.0.1:{port}/workers.get_stats"
    body = _get_stats_body(hours)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise RuntimeError(f"server exited with {proc.returncode}: {err[-2000:]}")
            try:
                status, answer = _post(url, body)
            except (ConnectionError, urllib.error.URLError):
                status, answer = 0, b""
            if status == 200:
                ready = time.perf_counter() - t0
                cpu = cpu_seconds(proc.pid)
                break
            if status not in (0, 503):
                raise RuntimeError(f"get_stats answered {status}: {answer[:500]!r}")
            if time.perf_counter() - t0 > 300:
                raise RuntimeError("no answer within 300 s")
            # a refused connection costs the server nothing; a 503 costs it a request (and the loading
            # thread the GIL meanwhile), so those are asked for less often
            time.sleep(0.01 if status == 0 else 0.05)
        time.sleep(0.2)  # anything the start still frees after its first answer
        mem = _proc_status(proc.pid)
        data = json.loads(answer)["data"]
        return {"ready": ready, "cpu": cpu, **mem, "answer": data}
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if proc.stderr:
            proc.stderr.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=1000)
    ap.add_argument("--hours", type=float, default=24)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--baseline", metavar="PATH", help="another checkout's tree, started in the same rounds")
    ap.add_argument("--keep", metavar="DIR", help="build the fleet into DIR (reused when it already holds one)")
    ap.add_argument("--build-child", metavar="DIR", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.build_child:
        build_child(args.build_child, args.workers, args.hours)
        return

    data = args.keep or tempfile.mkdtemp(prefix="workerhub-cold-")
    empty = tempfile.mkdtemp(prefix="workerhub-empty-")
    meta_path = os.path.join(data, "cold_start.json")
    try:
        if os.path.exists(meta_path):
            with open(meta_path) as f:
                built = json.load(f)
            print(f"reusing the fleet in {data}")
        else:
            os.makedirs(data, exist_ok=True)
            t = time.perf_counter()
            out = subprocess.run(
                [sys.executable, __file__, "--build-child", data, "--workers", str(args.workers),
                 "--hours", str(args.hours)],
                check=True, capture_output=True, text=True,
            ).stdout
            built = json.loads(out.strip().splitlines()[-1])
            built["workers"], built["hours"] = args.workers, args.hours
            with open(meta_path, "w") as f:
                json.dump(built, f)
            print(f"built {args.workers} workers x {args.hours:g} h live in {built['built_s']:.1f} s "
                  f"(+ snapshot: {time.perf_counter() - t:.1f} s in all)")
        hours = built["hours"]
        trees: list[tuple[str, str | None]] = [("this tree", None)]
        if args.baseline:
            trees.append((f"baseline {os.path.basename(os.path.abspath(args.baseline))}", args.baseline))
        results: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in trees}
        idle: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in trees}
        answers: dict[str, Any] = {}
        for r in range(args.rounds):
            for name, tree in trees:
                shutil.rmtree(empty, ignore_errors=True)
                idle[name].append(start_once(tree, empty, hours))
                res = start_once(tree, data, hours)
                answers.setdefault(name, res.pop("answer"))
                results[name].append(res)
                print(f"round {r + 1} {name}: ready in {res['ready']:.2f} s ({res['cpu']:.2f} s CPU), "
                      f"RSS {res['VmRSS'] / 2**20:.0f} MiB", flush=True)
        same = len({json.dumps(a, sort_keys=True) for a in answers.values()}) == 1
        rows = []
        for name, _ in trees:
            res = results[name]
            ready = [x["ready"] for x in res]
            cpu = [x["cpu"] for x in res]
            rss = statistics.median(x["VmRSS"] for x in res)
            live = statistics.median(x["VmRSS"] for x in idle[name]) + built["growth"]
            rows.append((
                name,
                f"{statistics.median(ready):.2f} ({min(ready):.2f}-{max(ready):.2f})",
                f"{statistics.median(cpu):.2f} ({min(cpu):.2f}-{max(cpu):.2f})",
                f"{statistics.median(x['ready'] for x in idle[name]):.2f} / "
                f"{statistics.median(x['cpu'] for x in idle[name]):.2f}",
                f"{rss / 2**20:.0f}",
                f"{statistics.median(x['RssAnon'] for x in res) / 2**20:.0f}",
                f"{statistics.median(x['RssFile'] for x in res) / 2**20:.0f}",
                f"{statistics.median(x['VmHWM'] for x in res) / 2**20:.0f}",
                f"{live / 2**20:.0f}",
                f"{rss / live:.2f}x",
            ))
        print()
        print(f"Fleet: {built['workers']} workers x {hours:g} h at 10 s, {built['values'] / 1e6:.0f} M values; "
              f"snapshot {built['size'] / 1e6:.0f} MB; {args.rounds} rounds; load average "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; same get_stats answer: {same}")
        print()
        print(table(rows, (
            "server", "exec to first get_stats: wall s, median (min-max)", "its CPU s", "empty dir: wall / CPU s",
            "RSS MiB", "anon", "file", "peak (HWM)",
            "live hub MiB (empty server + built)", "RSS / live",
        )))
        if not same:
            sys.exit("the trees answered get_stats differently")
    finally:
        shutil.rmtree(empty, ignore_errors=True)
        if not args.keep:
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
