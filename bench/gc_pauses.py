"""Run ``workerhub serve`` with the cyclic GC's pauses and the event loop's stalls recorded; print them at exit.

    taskset -c 0 python bench/gc_pauses.py 8031 &
    taskset -c 1 python bench/loadgen.py http --url http://127.0.0.1:8031 --duration 10 --rate 168
    kill -INT %1

Prints one line: passes, full (gen 2) passes, the longest pause, and how many pauses exceeded 10 ms; then
``GCSTATS {json}`` with the same figures, the tracked and frozen objects at exit, and the event loop's
longest stalls (bench/tail_latency.py and bench/tail_snapshot.py read it).

A *stall* is one trio task step that ran longer than 5 ms: while a step runs, no other request is served,
so the longest steps (with the task's name and when they happened) say what held the loop: a GC pass inside
a request, the snapshot's cut (journal rotation + fork), a big query. Measured with a trio instrument
(before/after each task step; every tree measured pays its cost alike).

Extra arguments after the port go to ``workerhub serve``. ``--persist`` as the first of them keeps
persistence on (the default here is ``--no-persist``): pass ``--data-dir`` and the snapshot settings after it.
"""

from __future__ import annotations

import atexit
import gc
import heapq
import json
import sys
import time
from typing import Any

import trio

from workerhub.cli import main

_pauses: list[tuple[int, float]] = []
_cpu: list[tuple[int, float]] = []  # the same passes in the thread's CPU time: what the pass itself cost
_full_at: list[tuple[float, float]] = []  # (wall time it ended, ms) of each full pass: to count a window only
_start = [0.0, 0.0]
STALL_MS = 5.0
TOP = 8


def _on_gc(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _start[0], _start[1] = time.perf_counter(), time.thread_time()
    else:
        _pauses.append((info["generation"], (time.perf_counter() - _start[0]) * 1000))
        _cpu.append((info["generation"], (time.thread_time() - _start[1]) * 1000))
        if info["generation"] == 2:
            _full_at.append((time.time(), _pauses[-1][1]))


class _Stalls(trio.abc.Instrument):
    """The longest task steps (ms, task name), a count per bound, and every stall with its wall time."""

    def __init__(self) -> None:
        self._t = self._cpu = 0.0
        self.top: list[tuple[float, str]] = []  # a min-heap of the TOP longest
        self.over = {5: 0, 10: 0, 50: 0}
        self.all: list[tuple[float, float, str, float, str]] = []  # (wall time, ms, task, CPU ms, await): to count a window only

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self._t = time.perf_counter()
        self._cpu = time.thread_time()

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        ms = (time.perf_counter() - self._t) * 1000
        if ms < STALL_MS:
            return
        cpu_ms = (time.thread_time() - self._cpu) * 1000  # far below ms: the thread waited (preempted, faults)
        for bound in self.over:
            if ms > bound:
                self.over[bound] += 1
        entry = (ms, task.name.rsplit(".", 1)[-1])
        self.all.append((time.time(), ms, task.name.rsplit(".", 1)[-1], cpu_ms, _suspended_at(task)))
        if len(self.top) < TOP:
            heapq.heappush(self.top, entry)
        else:
            heapq.heappushpop(self.top, entry)


def _suspended_at(task: trio.lowlevel.Task) -> str:
    """Where the task's step ended (the await it sits on, innermost frame of ours): names the step."""
    where, coro = "", task.coro
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None and "workerhub" in frame.f_code.co_filename:
            where = f"{frame.f_code.co_filename.rsplit('workerhub', 1)[-1]}:{frame.f_lineno}"
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return where


_stalls = _Stalls()


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
        "stalls": sorted(_stalls.top, reverse=True),
        "stalls_over": _stalls.over,
        "stall_list": _stalls.all,
        "full_list": _full_at,
        "slow_writes": _slow_writes,
    }
    print("GCSTATS " + json.dumps(stats), file=sys.stderr, flush=True)


_slow_writes: list[tuple[float, float]] = []  # (wall time, ms) of journal appends over 2 ms


def _time_journal_writes() -> None:
    """Diagnostics: how long each journal append (a write(2) on the event loop's thread) takes."""
    from workerhub.persistence import journal

    write_all = journal._write_all

    def timed(fd: int, data: bytes) -> None:
        t = time.perf_counter()
        write_all(fd, data)
        ms = (time.perf_counter() - t) * 1000
        if ms > 2:
            _slow_writes.append((time.time(), ms))

    journal._write_all = timed


def _run_instrumented(*args: Any, **kwargs: Any) -> Any:
    return _trio_run(*args, instruments=[_stalls], **kwargs)


_trio_run = trio.run

if __name__ == "__main__":
    gc.callbacks.append(_on_gc)
    atexit.register(_report)
    trio.run = _run_instrumented  # the CLI calls trio.run: the loop runs with the stall instrument
    _time_journal_writes()
    port, extra = sys.argv[1], sys.argv[2:]
    persist = ["--no-persist"]
    if extra[:1] == ["--persist"]:
        persist, extra = [], extra[1:]
    sys.exit(main(["serve", "--port", port, *persist, "--log-level", "warning", *extra]))
