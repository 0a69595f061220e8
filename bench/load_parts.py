"""Where the CPU of a start goes: the parts of a snapshot load, and a journal replay, each timed alone.

Each part runs in a fresh child process (so no part inherits another's warm heap) and reports its CPU time
(``time.process_time``: all threads) and wall time; the table prints the median of ``--rounds``:

* ``crc``: CRC-32 of every frame over the read-only mapping (what the checksum thread does);
* ``decode``: msgpack decode of every frame (which copies each array's bytes into a new ``bytes``);
* ``copy`` / ``view``: the file cut into 35 KB pieces (an hour-chunk's values), copied into new ``bytes``, or
  only sliced: the price of fresh memory, apart from decoding;
* ``load_state``: validating and rebuilding every history from the decoded frames (decode not counted);
* ``read_snapshot``: the whole load as ``serve`` runs it (helper thread, collector paused), and the same
  with the checksums in the decoding thread and with the collector left on, for comparison;
* ``journal``: ``--journal`` status_reports (1,000 workers, 24 values) journaled by a hub, then scanned and
  replayed into a fresh one (µs per record).

    python bench/cold_start.py --keep DIR          # builds the 1,000 x 24 h fleet into DIR once
    python bench/load_parts.py DIR/snapshot.msgpack
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _fleet import table  # noqa: E402

PARTS = ["crc", "decode", "copy", "view", "load_state", "read_snapshot", "read_snapshot, one thread",
         "read_snapshot, collector on", "journal"]


def _frames(path: str) -> Any:
    import mmap

    from workerhub.persistence.format import scan_frames
    from workerhub.persistence.snapshot import SNAPSHOT_MAGIC

    f = open(path, "rb")  # noqa: SIM115 -- mapped for the life of this child
    mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    return memoryview(mapped), scan_frames(memoryview(mapped), len(SNAPSHOT_MAGIC))


def part(name: str, path: str, journal: int) -> dict[str, float]:
    """(Child process.) Run one part; returns its CPU and wall seconds (and a count for per-item figures)."""
    import contextlib
    import gc
    import zlib

    import msgpack

    import workerhub.server  # noqa: F401 -- a serving process's heap and modules
    from workerhub.persistence import snapshot as snapshot_module
    from workerhub.persistence.format import scan_frames
    from workerhub.stats import WorkerHistory

    count = 0
    if name == "load_state":
        _view, frames = _frames(path)
        items = [msgpack.unpackb(p, raw=False, strict_map_key=False) for _o, p in frames]
        histories = [i[3] for i in items if isinstance(i, list) and i[0] == "history"]
    elif name == "journal":
        return _journal(journal)
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    if name == "crc":
        view, _frames_it = _frames(path)
        step = 1 << 20
        for at in range(0, len(view), step):
            zlib.crc32(view[at : at + step])
    elif name == "decode":
        _view, frames = _frames(path)
        kept = [msgpack.unpackb(p, raw=False, strict_map_key=False) for _o, p in frames]
        count = len(kept)
    elif name in ("copy", "view"):
        view, _frames_it = _frames(path)
        step = 35 * 1024
        pieces = [view[at : at + step] for at in range(0, len(view), step)]
        if name == "copy":
            pieces = [bytes(p) for p in pieces]  # type: ignore[misc]
        count = len(pieces)
    elif name == "load_state":
        loaded = [WorkerHistory.from_state(h) for h in histories]
        count = sum(len(h["chunks"]) for h in histories)
        del loaded
    else:
        if name == "read_snapshot, one thread":

            @contextlib.contextmanager
            def inline(view: memoryview, offset: int) -> Any:
                yield scan_frames(view, offset)

            snapshot_module._checked_ahead = inline  # type: ignore[assignment]
        if name == "read_snapshot, collector on":
            snapshot_module.gc = _NoPause()  # type: ignore[attr-defined]
        _header, state = snapshot_module.read_snapshot(path)
        count = len(state.histories)
    return {"cpu": time.process_time() - cpu, "wall": time.perf_counter() - wall, "count": count}


class _NoPause:
    """Stands in for the ``gc`` module inside snapshot.py: the collector is left running during the load."""

    def isenabled(self) -> bool:
        return False

    def disable(self) -> None:
        pass

    def enable(self) -> None:
        pass


def _journal(records: int) -> dict[str, float]:
    import tempfile

    import trio
    from _fleet import sample_pool

    from workerhub import Clock, Settings
    from workerhub.actors import open_hub
    from workerhub.messages import StatusReport
    from workerhub.persistence import open_store
    from workerhub.persistence.journal import scan_journal

    pool = sample_pool()
    directory = tempfile.mkdtemp(prefix="workerhub-journal-")
    t0 = 1_700_000_000.0

    class Crash(Exception):
        pass

    async def write() -> None:
        cfg = Settings(data_dir=directory, journal_fsync="never", snapshot_interval=1e9)
        async with open_store(cfg) as store, open_hub(cfg, clock=Clock(t0), store=store) as hub:
            async with store.serving(hub):
                for i in range(records):
                    report = StatusReport(f"w{i % 1000}", int(t0 * 1000) + (i // 1000) * 10_000, samples=pool[i % 512])
                    await hub.status_report(report)
                raise Crash  # no final snapshot: the records stay in the journal

    try:
        trio.run(write)
    except BaseException as exc:  # noqa: BLE001 -- the crash above, inside trio's exception groups
        if not (isinstance(exc, Crash) or (isinstance(exc, BaseExceptionGroup) and exc.subgroup(Crash))):
            raise
    cpu = time.process_time()
    scan = scan_journal(directory, 0)
    scanned = time.process_time() - cpu
    out: dict[str, float] = {}

    async def replay() -> None:
        cfg = Settings(data_dir=directory, snapshot_interval=1e9)
        async with open_store(cfg) as store, open_hub(cfg, clock=Clock(t0 + 400), store=store) as hub:
            del store
            cpu = time.process_time()
            for r in scan.records:
                hub.replay(r.op, r.identity, r.payload, r.ip, r.at)
            out["replay"] = time.process_time() - cpu

    trio.run(replay)
    n = len(scan.records)
    return {"cpu": scanned + out["replay"], "wall": float("nan"), "count": n,
            "scan_us": scanned / n * 1e6, "replay_us": out["replay"] / n * 1e6}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("snapshot", help="a snapshot file (e.g. from bench/cold_start.py --keep DIR)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--journal", type=int, default=30_000, help="status_reports in the journal part (0: skip)")
    ap.add_argument("--part", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.part:
        print(json.dumps(part(args.part, args.snapshot, args.journal)))
        return
    parts = [p for p in PARTS if p != "journal" or args.journal]
    runs: dict[str, list[dict[str, float]]] = {p: [] for p in parts}
    for _ in range(args.rounds):
        for name in parts:
            out = subprocess.run(
                [sys.executable, __file__, args.snapshot, "--part", name, "--journal", str(args.journal)],
                check=True, capture_output=True, text=True,
            ).stdout
            runs[name].append(json.loads(out.strip().splitlines()[-1]))
    rows = []
    for name in parts:
        r = runs[name]
        cpu = statistics.median(x["cpu"] for x in r)
        if name == "journal":
            note = (f"{r[0]['count']} records: scan {statistics.median(x['scan_us'] for x in r):.1f} µs, "
                    f"replay {statistics.median(x['replay_us'] for x in r):.1f} µs per record")
            rows.append((name, f"{cpu:.2f}", "-", note))
            continue
        wall = statistics.median(x["wall"] for x in r)
        note = ""
        if name == "load_state":
            note = f"{cpu / r[0]['count'] * 1e6:.1f} µs per hour-chunk ({r[0]['count']} chunks)"
        elif name in ("copy", "view"):
            note = f"{r[0]['count']} pieces of 35 KB"
        rows.append((name, f"{cpu:.2f}", f"{wall:.2f}", note))
    size = os.path.getsize(args.snapshot)
    print(f"{args.snapshot}: {size / 1e6:.0f} MB; median of {args.rounds} rounds, each part in a fresh process; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print()
    print(table(rows, ("part", "CPU s", "wall s", "note")))


if __name__ == "__main__":
    main()
