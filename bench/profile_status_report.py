"""Where a status_report's server CPU goes below the socket: CPU per call, then a cProfile of the same calls.

Runs a hub in-process (``--no-persist`` equivalent: the memory store; ``--journal DIR``: a disk store in
``interval`` mode, as ``serve`` runs it) and sends realistic agent reports (loadgen.py's bodies) after one
first report per agent (registration is not the steady state), through one of:

  stream    the stream connection's call path: a request frame's payload in, the reply frame out
            (decode_request, run_call, encode_reply), exactly what bench_stream.py's server does per call
            minus the socket reads and writes (default)
  run_call  api.pipeline.run_call with the body already msgpack-decoded

Prints µs of CPU per call without the profiler (median of ``--rounds`` rounds), ``debug.ping`` through the
same path (the transport's share), and the top functions by own time under cProfile.

``--compare SRC`` measures this tree and another checkout (SRC: its repository root, e.g. a worktree of
main) side by side instead: child processes of this script alternate between the two trees, ``--rounds``
times each, and a table gives CPU per call (medians and per-round ratios), as a loaded machine needs.

usage: python bench/profile_status_report.py [--path stream|run_call] [--agents 1000] [--reports 20000]
       [--rounds 3] [--top 25] [--journal DIR] [--compare SRC]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import msgpack
import trio
from loadgen import fleet_reports

from workerhub.actors import open_hub
from workerhub.api.pipeline import run_call
from workerhub.config import Settings
from workerhub.messages import DEFAULT_IDENTITY, Identity
from workerhub.stream.framing import encode_request


def _identify(name: str) -> Identity:
    return DEFAULT_IDENTITY


class _FakeStream:
    """Enough of a trio SocketStream for a stream connection object that is only asked to run calls."""

    class socket:  # noqa: N801 -- mimics the attribute
        @staticmethod
        def getpeername() -> tuple[str, int]:
            return ("127.0.0.1", 1)


async def _drive(a: argparse.Namespace) -> None:
    settings = Settings(persist=a.journal is not None, data_dir=a.journal or "", journal_fsync="interval")
    async with AsyncExitStack() as stack:
        store = None
        if a.journal is not None:
            from workerhub.persistence import open_store

            os.makedirs(a.journal, exist_ok=True)
            store = await stack.enter_async_context(open_store(settings))
        hub = await stack.enter_async_context(open_hub(settings, store=store))
        if store is not None:
            await stack.enter_async_context(store.serving(hub))  # loads the (empty) dir; fsyncs every interval
        hub.readiness.loaded()
        feed = fleet_reports(a.agents)
        call = _caller(hub, a.path)
        for _ in range(a.agents):
            await call("workers.status_report", next(feed))
        per_round = max(1, a.reports // (2 * a.rounds))
        sr, ping = [], []
        for _ in range(a.rounds):
            sr.append(await _timed(call, "workers.status_report", [next(feed) for _ in range(per_round)]))
            ping.append(await _timed(call, "debug.ping", [{} for _ in range(per_round)]))
        bodies = [next(feed) for _ in range(a.reports // 2)]
        prepared = [_prepare(a.path, "workers.status_report", b) for b in bodies]
        prof = cProfile.Profile()
        prof.enable()
        for p in prepared:
            await call.raw(p)  # type: ignore[attr-defined]
        prof.disable()
    sr_us, ping_us = statistics.median(sr), statistics.median(ping)
    print(f"path {a.path}, {'journal (interval)' if a.journal else 'no journal'}, load {os.getloadavg()[0]:.2f}")
    print(f"status_report: {sr_us:.1f} µs CPU per call (rounds: {', '.join(f'{x:.1f}' for x in sr)})")
    print(f"debug.ping:    {ping_us:.1f} µs CPU per call; status_report - ping: {sr_us - ping_us:.1f} µs")
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(a.top)
    print(out.getvalue())


def _prepare(path: str, name: str, body: Any) -> Any:
    frame = encode_request(1, name, body)[4:]
    return frame if path == "stream" else (name, msgpack.unpackb(frame)["body"])


async def _timed(call: Any, name: str, bodies: list[Any]) -> float:
    prepared = [_prepare(call.path, name, b) for b in bodies]
    c0 = time.process_time()
    for p in prepared:
        await call.raw(p)
    return (time.process_time() - c0) / len(prepared) * 1e6


def _caller(hub: Any, path: str) -> Any:
    if path == "stream":
        from workerhub.api.auth import Authenticator
        from workerhub.stream.server import _Budget, _Connection

        conn = _Connection(hub, _FakeStream(), Authenticator(hub.settings, hub.clock), _Budget(hub.settings))  # type: ignore[arg-type]
        raw: Callable[[Any], Awaitable[Any]] = conn._call
    else:

        async def raw(p: Any) -> Any:
            name, body = p
            return await run_call(hub, name, identify=_identify, decode=lambda: body, ip="127.0.0.1")

    async def call(name: str, body: Any) -> Any:
        return await raw(_prepare(path, name, body))

    call.raw = raw  # type: ignore[attr-defined]
    call.path = path  # type: ignore[attr-defined]
    return call


def _compare(a: argparse.Namespace) -> None:
    """Alternate child runs of this script on this tree and on ``a.compare``; print a table."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    trees = {"branch": here, "other": os.path.abspath(a.compare)}
    args = ["--path", a.path, "--agents", str(a.agents), "--reports", str(a.reports), "--rounds", "1", "--top", "0"]
    got: dict[str, dict[str, list[float]]] = {t: {"status_report": [], "debug.ping": []} for t in trees}
    loads = []
    for rnd in range(a.rounds):
        for tree in (("branch", "other") if rnd % 2 == 0 else ("other", "branch")):
            if a.journal is not None:
                shutil.rmtree(a.journal, ignore_errors=True)
            env = dict(os.environ, PYTHONPATH=trees[tree])
            extra = ["--journal", a.journal] if a.journal is not None else []
            out = subprocess.run(
                [sys.executable, os.path.abspath(__file__), *args, *extra], env=env, capture_output=True, text=True,
                check=True,
            ).stdout
            for name in got[tree]:
                got[tree][name].append(float(re.search(rf"^{re.escape(name)}: +([0-9.]+)", out, re.M)[1]))  # type: ignore[index]
            loads.append(os.getloadavg()[0])
            print(tree, {k: v[-1] for k, v in got[tree].items()}, flush=True)
    print(
        f"\n## CPU per call in process, path {a.path}, {'journal (interval)' if a.journal else 'no journal'}, "
        f"{a.rounds} alternating rounds; load average {min(loads):.1f}-{max(loads):.1f}\n"
    )
    print(f"| call | {os.path.basename(trees['other'])} µs | this tree µs | ratio (rounds) |")
    print("|---|---|---|---|")
    for name in ("status_report", "debug.ping"):
        other, mine = got["other"][name], got["branch"][name]
        ratios = [m / o for m, o in zip(mine, other)]
        print(
            f"| {name} | {statistics.median(other):.1f} | {statistics.median(mine):.1f} | "
            f"**{statistics.median(ratios):.2f}x** ({', '.join(f'{r:.2f}' for r in ratios)}) |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--path", choices=("stream", "run_call"), default="stream")
    ap.add_argument("--agents", type=int, default=1000)
    ap.add_argument("--reports", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--journal", metavar="DIR", help="journal to a disk store in DIR (interval fsync)")
    ap.add_argument("--compare", metavar="SRC", help="another checkout to measure side by side with this tree")
    a = ap.parse_args()
    if a.compare:
        _compare(a)
    else:
        trio.run(_drive, a)


if __name__ == "__main__":
    main()
