"""The end-to-end race of issue #9: snapshots every 0.3 s while a worker gains a core every round and a
dashboard charts cpu_usage at 3600 s and 60 s (the reads that used to widen frozen arrays under the writer).

1. A data directory is built offline with the hub API: ``--workers`` workers x ``--days`` days of sparse
   history (one report per worker per ``--every`` seconds of report time, 4 cores + memory), saved by a clean
   stop (a snapshot).
2. ``workerhub serve`` starts on it in a subprocess (``--snapshot-interval 0.3 --raw-retention 5``).
3. ``--rounds`` rounds: the worker ``grower`` reports with one more core than the round before, then
   get_stats of cpu_usage (avg/min/max, split by variant and pooled) at 3600 s over the whole range and at
   60 s over the last 6 h. Every round checks that the server is alive; every new ``snapshot.msgpack``
   seen every ``--check-every`` rounds (hard-linked so the rename cannot swap it away) is read back whole, and
   the last one with ``workerhub snapshot inspect`` itself. (The server verifies every file it writes before
   the rename, so every snapshot that ever reaches the disk has been read back once already.)
4. Quiet for ``raw_retention`` + 3 s (raw rows trimmed, answers stable), every query answered and kept,
   SIGTERM (final snapshot), restart, every query asked again: the answers must be identical.

    python bench/race_snapshot.py                   # 150 workers x 20 days, 110 rounds (~1-2 min)
    python bench/race_snapshot.py --writer thread   # the same with the thread writer
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

import httpx
import trio

DAY = 86400


def build(data_dir: str, workers: int, days: int, every: int, now: float) -> int:
    """Write the history offline through the hub API, as a real server would journal and snapshot it."""
    from workerhub import Clock, Settings
    from workerhub.actors import open_hub
    from workerhub.messages import StatusReport
    from workerhub.persistence import open_store

    settings = Settings(data_dir=data_dir, snapshot_interval=1e9, default_timeout=10 * DAY)
    start = int(now) - days * DAY
    count = 0

    async def run() -> None:
        nonlocal count
        async with (
            open_store(settings) as store,
            open_hub(settings, clock=Clock(now), store=store) as hub,
            store.serving(hub),
        ):
            for t in range(start, int(now) - 600, every):
                for w in range(workers):
                    ts = t + (w * 37) % every
                    samples = tuple(("cpu_usage", str(c), float((t // 60 + w + c) % 100)) for c in range(4))
                    samples += (("memory_used", "total", float(w + 1)),)
                    await hub.status_report(StatusReport(worker=f"w{w:03d}", timestamp=ts * 1000, samples=samples))
                    count += 1

    trio.run(run)
    return count


class Server:
    """``workerhub serve`` in a subprocess; stderr drained in a thread and kept."""

    def __init__(self, data_dir: str, writer: str) -> None:
        cmd = [
            sys.executable, "-m", "workerhub", "serve", "--port", "0", "--data-dir", data_dir,
            "--snapshot-interval", "0.3", "--raw-retention", "5", "--snapshot-writer", writer,
            "--default-timeout", str(30 * DAY), "--log-level", "info",
        ]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            self.proc.kill()
            raise SystemExit(f"server did not start: {line!r} {self.proc.communicate()[1]}")
        self.url = line.split()[-1]
        self.log: list[str] = []
        self._drain = threading.Thread(target=self._read, daemon=True)
        self._drain.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line.rstrip())

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=120)
        self._drain.join(timeout=10)
        return code


def queries(now: float, days: int) -> list[dict[str, Any]]:
    items = [{"key": "cpu_usage", "aggregation": a} for a in ("avg", "min", "max")]
    out = []
    for split in (True, False):
        out.append({"from_date": now - days * DAY, "to_date": now + 60, "interval": 3600, "items": items,
                    "split_by_variant": split})
        out.append({"from_date": now - 6 * 3600, "to_date": now + 60, "interval": 60, "items": items,
                    "split_by_variant": split})
    return out


def ask_all(client: httpx.Client, qs: list[dict[str, Any]]) -> list[Any]:
    answers = []
    for q in qs:
        r = client.post("/workers.get_stats", json=q)
        assert r.status_code == 200, r.text
        answers.append(r.json()["data"])
    return answers


def check_snapshot(path: str, links: str, seen: set[int], checked: list[str]) -> None:
    """Hard-link the current snapshot (a later rename cannot swap it away) and read it back whole, once per
    file: every frame's checksum, every record decoded, every array's size against its shape (what
    ``workerhub snapshot inspect`` reads, without keeping the state)."""
    from workerhub.persistence.snapshot import verify_snapshot

    link = os.path.join(links, "snap")
    try:
        os.link(path, link)
    except FileNotFoundError:
        return
    try:
        inode = os.stat(link).st_ino
        if inode not in seen:
            seen.add(inode)
            verify_snapshot(link)  # raises PersistenceError on any damage
            checked.append(link)
    finally:
        os.unlink(link)


def _first_difference(b: Any, a: Any, path: str = "") -> str:
    if isinstance(b, dict) and isinstance(a, dict):
        for k in sorted(set(b) | set(a), key=str):
            if b.get(k) != a.get(k):
                return _first_difference(b.get(k), a.get(k), f"{path}.{k}")
    if isinstance(b, list) and isinstance(a, list) and len(b) == len(a):
        for i, (x, y) in enumerate(zip(b, a, strict=True)):
            if x != y:
                return _first_difference(x, y, f"{path}[{i}]")
    return f"{path}: before {str(b)[:300]} after {str(a)[:300]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=150)
    parser.add_argument("--days", type=int, default=20)
    parser.add_argument("--every", type=int, default=3600, help="seconds of report time between a worker's reports")
    parser.add_argument("--rounds", type=int, default=110)
    parser.add_argument("--writer", default="fork", choices=["fork", "thread"])
    parser.add_argument("--check-every", type=int, default=5, help="read the snapshot back every N rounds")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="workerhub-race-") as tmp:
        data = os.path.join(tmp, "data")
        links = os.path.join(tmp, "links")
        os.mkdir(links)
        now = time.time()
        t = time.perf_counter()
        reports = build(data, args.workers, args.days, args.every, now)
        build_s = time.perf_counter() - t
        snapshot = os.path.join(data, "snapshot.msgpack")

        server = Server(data, args.writer)
        seen: set[int] = set()
        checked: list[str] = []
        alive = True
        t = time.perf_counter()
        with httpx.Client(base_url=server.url, timeout=120) as client:
            for rnd in range(args.rounds):
                cores = rnd + 1
                body = {"worker": "grower", "timestamp": int(time.time() * 1000),
                        "machine_stats": {"cpu_usage": [float(c + rnd) for c in range(cores)], "memory_used": 5}}
                r = client.post("/workers.status_report", json=body)
                assert r.status_code == 200, r.text
                ask_all(client, queries(time.time(), args.days))
                if server.proc.poll() is not None:
                    alive = False
                    break
                if rnd % args.check_every == 0:
                    check_snapshot(snapshot, links, seen, checked)
            rounds_s = time.perf_counter() - t
            time.sleep(8)  # raw rows written by the rounds age past raw_retention and are trimmed
            check_snapshot(snapshot, links, seen, checked)
            frozen_at = time.time()
            before = ask_all(client, queries(frozen_at, args.days))
        alive = alive and server.proc.poll() is None
        stop_code = server.stop()
        log = server.log
        written = sum(1 for line in log if re.search(r"snapshot: \d+ workers", line))
        failed = [line for line in log if "snapshot failed" in line]
        cli = subprocess.run(
            [sys.executable, "-m", "workerhub", "snapshot", "inspect", snapshot],
            capture_output=True, text=True, timeout=120, check=False,
        )

        server = Server(data, args.writer)
        with httpx.Client(base_url=server.url, timeout=120) as client:
            after = ask_all(client, queries(frozen_at, args.days))
        restart_code = server.stop()

    same = before == after
    print(f"| race run ({args.writer} writer) | value |")
    print("|---|---|")
    print(f"| history built offline | {args.workers} workers x {args.days} days, {reports} reports, {build_s:.1f} s |")
    print(f"| rounds (a core gained + 4 get_stats each) | {args.rounds} in {rounds_s:.1f} s |")
    print(f"| server alive through every round | {'yes' if alive else 'NO'} (exit status at SIGTERM: {stop_code}) |")
    print(f"| snapshots written (logged) / failed | {written} / {len(failed)} |")
    print(f"| distinct snapshot files read back whole | {len(checked)}, all good |")
    print(f"| `workerhub snapshot inspect` on the final file | exit {cli.returncode} |")
    print(f"| get_stats answers identical after the restart | {'yes' if same else 'NO'} ({len(before)} queries) |")
    print(f"| restarted server stopped cleanly | exit {restart_code} |")
    if failed:
        print("\n".join(failed[:5]))
    if not same:
        for i, (b, a) in enumerate(zip(before, after, strict=True)):
            if b != a:
                print(f"query {i} differs: {_first_difference(b, a)}")
    if not (alive and same and cli.returncode == 0 and not failed and stop_code == 0):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
