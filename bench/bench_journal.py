"""What journaling costs per accepted report, in process (no HTTP), side by side.

Rows: the store's ``append`` alone for MemoryStore and DiskStore in each fsync mode, with 1 and with 16
concurrent appenders (group commit shares fsyncs); and the two ways to hand a record to the kernel: an
``os.write`` inline on the event loop (what DiskStore does) against the same write in a worker thread.

    python bench/bench_journal.py [--n 3000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

import trio

from workerhub import Settings, open_hub
from workerhub.messages import DEFAULT_IDENTITY, StatusReport
from workerhub.persistence import DiskStore, MemoryStore
from workerhub.persistence.format import encode_record, frame

REPORT = StatusReport(
    worker="w1",
    timestamp=1_700_000_000_000,
    task="t1",
    samples=tuple(("cpu_usage", str(i), 10.0 + i) for i in range(8))
    + tuple((f"gpu_{m}", str(i), 1.0) for m in ("usage", "temperature", "memory_free", "memory_used") for i in range(2))
    + tuple((m, "total", 5.0) for m in ("memory_used", "memory_free", "network_tx", "network_rx", "disk_read", "disk_write", "disk_free_home", "cpu_temperature")),
)


async def appends(store: object, n: int, concurrency: int) -> float:
    per = n // concurrency

    async def one() -> None:
        for i in range(per):
            await store.append("status_report", DEFAULT_IDENTITY, REPORT, "10.0.0.1", 1.7e9 + i)  # type: ignore[attr-defined]

    t = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(one)
    return (time.perf_counter() - t) / (per * concurrency) * 1e6


async def disk(mode: str, n: int, concurrency: int) -> float:
    d = tempfile.mkdtemp(prefix="workerhub-journal-")
    try:
        store = DiskStore(d, journal_fsync=mode)
        async with open_hub(Settings(data_dir=d), store=store) as hub, store.serving(hub):
            us = await appends(store, n, concurrency)
        await store.aclose()
        return us
    finally:
        shutil.rmtree(d, ignore_errors=True)


async def raw_writes(n: int, threaded: bool) -> float:
    d = tempfile.mkdtemp(prefix="workerhub-journal-")
    rec = frame(encode_record("status_report", DEFAULT_IDENTITY, REPORT, "10.0.0.1", 1.7e9))
    fd = os.open(os.path.join(d, "f"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        t = time.perf_counter()
        for _ in range(n):
            if threaded:
                await trio.to_thread.run_sync(os.write, fd, rec)
            else:
                os.write(fd, rec)
        return (time.perf_counter() - t) / n * 1e6
    finally:
        os.close(fd)
        shutil.rmtree(d, ignore_errors=True)


async def main(n: int) -> None:
    rec = frame(encode_record("status_report", DEFAULT_IDENTITY, REPORT, "10.0.0.1", 1.7e9))
    t = time.perf_counter()
    for _ in range(n):
        frame(encode_record("status_report", DEFAULT_IDENTITY, REPORT, "10.0.0.1", 1.7e9))
    encode_us = (time.perf_counter() - t) / n * 1e6
    print(f"record: {len(rec)} bytes for a 24-value report; encode + frame {encode_us:.1f} us\n")
    print("| append path | concurrency | us per append |")
    print("|---|---|---|")
    print(f"| MemoryStore | 1 | {await appends(MemoryStore(), n, 1):.1f} |")
    for mode in ("never", "interval", "always"):
        for c in (1, 16):
            print(f"| DiskStore {mode} | {c} | {await disk(mode, n if mode != 'always' else n // 3, c):.1f} |")
    print(f"| os.write inline (event loop) | 1 | {await raw_writes(n, False):.1f} |")
    print(f"| os.write in trio.to_thread | 1 | {await raw_writes(n, True):.1f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000)
    trio.run(main, parser.parse_args().n)
