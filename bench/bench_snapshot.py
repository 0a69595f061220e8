"""Request latency while a big snapshot is written, against no snapshot, side by side; snapshot size and times.

State: ``--workers`` registered workers, each with ``--hours`` of history at a 10 s cadence and 24 series
(default 1,000 x 24 h = 8.64 M reports, ~1.1 GB in memory). One history is built through
``WorkerHistory.add`` and copied for the others (same bytes to write; building 8.64 M reports through HTTP
would take hours). The state is written once offline (write time, size), then a real server (hypercorn,
in a thread of this process) loads it from its data directory (load time).

Load: a separate process sends status_report requests over HTTP (keep-alive, ``--clients`` threads, one
request in flight each) and records each latency. Rounds alternate, per writer in ``--writers`` (default
both): a window while the server writes a snapshot with that writer (forced, from its own event loop,
exactly as the periodic one), then a window of the same length without. ``thread`` is the writer main had
(a worker thread sharing the GIL); ``fork`` writes from a forked child. The table gives the latency
percentiles of each; the snapshot table its size and times.

    python bench/bench_snapshot.py                      # 1,000 workers x 24 h (needs a few GB of RAM, ~2 min)
    python bench/bench_snapshot.py --workers 100 --hours 6  # quick
    python bench/bench_snapshot.py --writers fork           # one writer only
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing as mp
import os
import shutil
import statistics
import tempfile
import threading
import time
from typing import Any

T0 = 1_700_000_000


def client_main(url: str, workers: int, clients: int, conn: Any) -> None:
    """Load generator (own process): on "start" send reports until "stop", then return the latencies (s)."""
    import httpx

    while True:
        cmd = conn.recv()
        if cmd == "exit":
            return
        stop = threading.Event()
        latencies: list[float] = []
        lock = threading.Lock()

        def run(k: int) -> None:
            mine: list[float] = []
            with httpx.Client(base_url=url, timeout=60) as client:
                i = 0
                while not stop.is_set():  # noqa: B023 -- the threads are joined in this iteration
                    worker = f"w{(k * 7919 + i) % workers}"
                    body = {
                        "worker": worker,
                        "timestamp": (T0 + 10_000_000 + i) * 1000,
                        "machine_stats": {"cpu_usage": [10, 20, 30, 40], "memory_used": 1000, "gpu_usage": [50]},
                    }
                    t = time.perf_counter()
                    r = client.post("/workers.status_report", json=body)
                    mine.append(time.perf_counter() - t)
                    assert r.status_code == 200, r.text
                    i += 1
            with lock:  # noqa: B023 -- as above
                latencies.extend(mine)  # noqa: B023 -- as above

        threads = [threading.Thread(target=run, args=(k,)) for k in range(clients)]
        for t in threads:
            t.start()
        conn.send("running")
        assert conn.recv() == "stop"
        stop.set()
        for t in threads:
            t.join()
        conn.send(latencies)


def build_state(workers: int, hours: float) -> Any:
    from workerhub.hubstate import HubState, SavedWorker
    from workerhub.messages import DEFAULT_IDENTITY
    from workerhub.stats import WorkerHistory

    reports = int(hours * 360)
    one = WorkerHistory()
    names = [("cpu_usage", str(i)) for i in range(8)] + [
        (f"gpu_{m}", str(i)) for m in ("usage", "temperature", "memory_free", "memory_used") for i in range(2)
    ]
    names += [("cpu_temperature", "0")] + [
        (m, "total") for m in ("memory_used", "memory_free", "network_tx", "network_rx", "disk_read", "disk_write", "disk_free_home")
    ]
    assert len(names) == 24
    start_ms = (T0 - int(hours * 3600)) * 1000
    for r in range(reports):
        samples = [(m, v, float((r * 31 + j) % 100 + 1)) for j, (m, v) in enumerate(names)]
        one.add(start_ms + r * 10_000, r % 3 == 0, samples, written_at=T0 - hours * 3600 + r * 10)
    frozen = one.to_state()
    histories = []
    states = []
    for w in range(workers):
        histories.append(("workerhub", f"w{w}", WorkerHistory.from_state(frozen).freeze()))
        states.append(
            SavedWorker(
                DEFAULT_IDENTITY, f"w{w}", "10.0.0.1", 86400 * 30, T0 - 100, T0 - 10, T0 - 10, (), None, None, None,
                None, None,  # tags, system_tags
                time.time() + 86400 * 30,  # registered well past the run (the server's clock is real time)
            )
        )
    return HubState(float(T0), states, histories), reports


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1000)
    parser.add_argument("--hours", type=float, default=24)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--fsync", default="interval", choices=["always", "interval", "never"])
    parser.add_argument("--writers", default="thread,fork", help="comma-separated: thread, fork")
    args = parser.parse_args()
    writers = [w.strip() for w in args.writers.split(",") if w.strip()]

    from workerhub.persistence.snapshot import write_snapshot
    from workerhub.testing import running_server

    data = tempfile.mkdtemp(prefix="workerhub-bench-")
    try:
        t = time.perf_counter()
        state, reports = build_state(args.workers, args.hours)
        print(f"built {args.workers} workers x {reports} reports x 24 series in {time.perf_counter() - t:.1f} s")
        offline = write_snapshot(data, state, 0)
        del state
        gc.collect()
        size = os.path.getsize(offline.path)

        t = time.perf_counter()
        with running_server(
            data_dir=data, snapshot_interval=1e9, journal_fsync=args.fsync, raw_retention=1e9
        ) as server:
            load_s = time.perf_counter() - t
            hub = server.hub
            store = hub.store
            parent, child = mp.get_context("spawn").Pipe()
            proc = mp.get_context("spawn").Process(
                target=client_main, args=(server.url, args.workers, args.clients, child)
            )
            proc.start()

            def window(seconds: float | None, writer: str = "") -> tuple[list[float], float]:
                parent.send("start")
                assert parent.recv() == "running"
                time.sleep(0.3)  # connections warm
                t0 = time.perf_counter()
                if seconds is None:
                    import trio

                    store.snapshot_writer = writer
                    info = trio.from_thread.run(
                        lambda: store.snapshot(hub, force=True), trio_token=server._token
                    )
                    assert info is not None
                    written[writer].append(info)
                    cuts[writer].append(store.last_cut_seconds)
                else:
                    time.sleep(seconds)
                elapsed = time.perf_counter() - t0
                parent.send("stop")
                return parent.recv(), elapsed

            written: dict[str, list[Any]] = {w: [] for w in writers}
            cuts: dict[str, list[float]] = {w: [] for w in writers}
            during: dict[str, list[float]] = {w: [] for w in writers}
            without: list[float] = []
            for _ in range(args.rounds):
                for writer in writers:
                    lat, elapsed = window(None, writer)
                    during[writer] += lat
                    lat, _ = window(elapsed)
                    without += lat
            parent.send("exit")
            proc.join()
    finally:
        shutil.rmtree(data, ignore_errors=True)

    print()
    print(f"State: {args.workers} workers x {args.hours:g} h at 10 s x 24 series; journal fsync {args.fsync}; "
          f"{args.clients} clients, {args.rounds} rounds")
    print()
    print("| window | requests | p50 ms | p99 ms | max ms | p50 / none | p99 / none |")
    print("|---|---|---|---|---|---|---|")
    rows = [("no snapshot", without)] + [(f"snapshot being written ({w} writer)", during[w]) for w in writers]
    for name, lat in rows:
        print(f"| {name} | {len(lat)} | {pct(lat, 0.5):.1f} | {pct(lat, 0.99):.1f} | {max(lat) * 1000:.1f} | "
              f"{pct(lat, 0.5) / pct(without, 0.5):.2f}x | {pct(lat, 0.99) / pct(without, 0.99):.2f}x |")
    print()
    print("| snapshot | value |")
    print("|---|---|")
    print(f"| file size | {size / 1e6:.0f} MB ({size / (args.workers * reports * 24):.2f} B per stored value) |")
    print(f"| write, offline (encode + write + fsync + read back and verify + rename) | {offline.seconds:.2f} s |")
    for w in writers:
        secs = [i.seconds for i in written[w]]
        print(f"| {w} writer: write + verify in the server under load (median of {len(secs)}) | "
              f"{statistics.median(secs):.2f} s |")
        print(f"| {w} writer: requests held at the cut, max of {len(cuts[w])} | {max(cuts[w]) * 1000:.1f} ms |")
    print(f"| server start: load + restore | {load_s:.2f} s |")


if __name__ == "__main__":
    main()
