"""Shared helpers for the stats benchmarks: realistic reports, fleet building through the ingest path, RSS."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from typing import Any

from workerhub.stats.flatten import flatten_machine_stats

DAY_S = 86_400
START_MS = 1_700_006_400_000  # a fixed origin (a UTC midnight) so runs are comparable


def realistic_body(rng: random.Random) -> dict[str, Any]:
    """machine_stats of an 8-core, 2-GPU agent: 24 values (the clearml-agent's usual report)."""
    return {
        "cpu_usage": [round(rng.uniform(0.5, 100), 1) for _ in range(8)],
        "cpu_temperature": [round(rng.uniform(35, 90), 1)],
        "gpu_usage": [round(rng.uniform(1, 100), 1) for _ in range(2)],
        "gpu_temperature": [round(rng.uniform(30, 85), 1) for _ in range(2)],
        "gpu_memory_free": [round(rng.uniform(100, 24000), 1) for _ in range(2)],
        "gpu_memory_used": [round(rng.uniform(100, 24000), 1) for _ in range(2)],
        "memory_used": round(rng.uniform(1000, 60000), 1),
        "memory_free": round(rng.uniform(1000, 60000), 1),
        "network_tx": round(rng.uniform(0.1, 100), 2),
        "network_rx": round(rng.uniform(0.1, 100), 2),
        "disk_free_home": round(rng.uniform(1, 100), 1),
        "disk_free_temp": round(rng.uniform(1, 100), 1),
        "disk_read": round(rng.uniform(0.1, 50), 2),
    }


def sample_pool(n: int = 512, seed: int = 1) -> list[tuple]:
    """Pre-flattened reports (flattening is not what these benchmarks measure)."""
    rng = random.Random(seed)
    return [flatten_machine_stats(realistic_body(rng)) for _ in range(n)]


def build(
    make: Callable[[], Any],
    workers: int,
    reports: int,
    cadence_ms: int = 10_000,
    pool: list[tuple] | None = None,
    task_every: int = 3,
) -> tuple[list[Any], float]:
    """``workers`` histories fed ``reports`` reports each, time-major like a live fleet (0-0.5 s jitter).

    Returns the histories and the median-free mean µs per ``add`` (the whole build is timed).
    """
    pool = pool or sample_pool()
    rng = random.Random(7)
    jitter = [rng.randrange(0, 500) for _ in range(997)]
    hs = [make() for _ in range(workers)]
    npool = len(pool)
    t0 = time.perf_counter()
    for k in range(reports):
        base = START_MS + k * cadence_ms
        written = base / 1000
        for w, h in enumerate(hs):
            h.add(base + jitter[(k + w) % 997], w % task_every != 0, pool[(k * 31 + w) % npool], written)
    elapsed = time.perf_counter() - t0
    return hs, elapsed / (workers * reports) * 1e6


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def table(rows: list[tuple], header: tuple) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda r: "| " + " | ".join(str(x).ljust(w) for x, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])
