"""Run ``workerhub serve`` with the cyclic GC's pauses recorded; print them when the server stops.

    taskset -c 0 python bench/gc_pauses.py 8031 &
    taskset -c 1 python bench/loadgen.py http --url http://127.0.0.1:8031 --duration 10 --rate 168
    kill -INT %1

Prints one line: passes, full (gen 2) passes, the longest pause, and how many pauses exceeded 10 ms; then
``GCSTATS {json}`` with the same figures and the tracked and frozen objects at exit (bench/tail_latency.py
reads it). Extra arguments after the port go to ``workerhub serve``.
"""

from __future__ import annotations

import atexit
import gc
import json
import sys
import time
from typing import Any

from workerhub.cli import main

_pauses: list[tuple[int, float]] = []
_cpu: list[tuple[int, float]] = []  # the same passes in the thread's CPU time: what the pass itself cost
_start = [0.0, 0.0]


def _on_gc(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _start[0], _start[1] = time.perf_counter(), time.thread_time()
    else:
        _pauses.append((info["generation"], (time.perf_counter() - _start[0]) * 1000))
        _cpu.append((info["generation"], (time.thread_time() - _start[1]) * 1000))


def _report() -> None:
    full = [ms for gen, ms in _pauses if gen == 2]
    longest = max((ms for _g, ms in _pauses), default=0.0)
    over = sum(1 for _g, ms in _pauses if ms > 10)
    print(
        f"gc passes {len(_pauses)}, full {len(full)}, longest {longest:.1f} ms, "
        f"longest full {max(full, default=0.0):.1f} ms, pauses over 10 ms: {over}",
        file=sys.stderr,
    )
    stats = {
        "passes": len(_pauses),
        "full": len(full),
        "longest_ms": longest,
        "longest_full_ms": max(full, default=0.0),
        "over_10ms": over,
        "gc_ms_total": sum(ms for _g, ms in _pauses),
        "longest_full_cpu_ms": max((ms for gen, ms in _cpu if gen == 2), default=0.0),
        "gc_cpu_ms_total": sum(ms for _g, ms in _cpu),
        "tracked": len(gc.get_objects()),
        "frozen": gc.get_freeze_count(),
    }
    print("GCSTATS " + json.dumps(stats), file=sys.stderr, flush=True)


if __name__ == "__main__":
    gc.callbacks.append(_on_gc)
    atexit.register(_report)
    sys.exit(main(["serve", "--port", sys.argv[1], "--no-persist", "--log-level", "warning", *sys.argv[2:]]))
