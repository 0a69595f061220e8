"""Load generator: N simulated ClearML agents sending workers.status_report, over HTTP or the msgpack stream.

Each agent has the machine of a typical GPU box (8 CPU cores, 2 GPUs) and reports every 10 s of its own
(synthetic) clock: per-core CPU usage, per-GPU usage/memory/temperature, CPU temperature, memory, network
and disk scalars, and its task and queue, ~600 bytes of JSON like clearml-agent's ResourceMonitor sends.

Usage (prints one JSON line with the result):
  python loadgen.py http   --url http://127.0.0.1:8008 --conns 32 --duration 10 [--rate R]
  python loadgen.py stream --url msgpack://127.0.0.1:8009 --duration 10 [--window 256]

HTTP: ``--conns`` keep-alive connections driven by one ``selectors`` loop (no threads, so no GIL hand-offs).
Closed loop (each connection sends its next request when the reply arrives) unless ``--rate`` is given:
then requests are *scheduled* at ``rate`` req/s in total and latency is counted from the scheduled time,
so a stalled server is not hidden by the generator waiting for it (no coordinated omission).
Stream: one connection through :class:`workerhub.client.StreamClient` with ``--window`` calls in flight.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import selectors
import socket
import statistics
import sys
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import orjson

REPORT_PERIOD_MS = 10_000
START_MS = 1_764_000_000_000


class Agent:
    """One simulated agent: its id, its fixed machine and a reporting clock that advances 10 s per report."""

    __slots__ = ("worker", "task", "queue", "t_ms", "rng")

    def __init__(self, index: int, seed: int = 0) -> None:
        self.worker = f"gpu-node-{index:05d}:gpuall"
        self.task = f"{random.Random(index).getrandbits(128):032x}"
        self.queue = "default-gpu-a100"
        self.t_ms = START_MS + index  # distinct timestamps across agents
        self.rng = random.Random(seed * 1_000_003 + index)

    def report(self) -> dict[str, Any]:
        r = self.rng.random
        self.t_ms += REPORT_PERIOD_MS
        return {
            "worker": self.worker,
            "timestamp": self.t_ms,
            "task": self.task,
            "queue": self.queue,
            "machine_stats": {
                "cpu_usage": [round(r() * 100, 2) for _ in range(8)],
                "cpu_temperature": [round(40 + r() * 30, 1)],
                "gpu_usage": [round(r() * 100, 2), round(r() * 100, 2)],
                "gpu_memory_used": [int(r() * 40000), int(r() * 40000)],
                "gpu_memory_free": [int(r() * 40000), int(r() * 40000)],
                "gpu_temperature": [int(50 + r() * 30), int(50 + r() * 30)],
                "memory_used": round(8000 + r() * 50000, 1),
                "memory_free": round(r() * 60000, 1),
                "network_tx": round(r() * 100, 3),
                "network_rx": round(r() * 100, 3),
                "disk_free_home": round(r() * 500000, 1),
                "disk_read": round(r() * 50, 3),
                "disk_write": round(r() * 50, 3),
            },
        }


def fleet_reports(agents: int, seed: int = 0) -> Iterator[dict[str, Any]]:
    """Reports of ``agents`` agents, round-robin forever (each agent's clock advances 10 s per report)."""
    fleet = [Agent(i, seed) for i in range(agents)]
    while True:
        for agent in fleet:
            yield agent.report()


# --- HTTP ----------------------------------------------------------------------------------------------


class _HttpConn:
    __slots__ = ("index", "sock", "buf", "sent_at", "busy")

    def __init__(self, index: int, host: str, port: int) -> None:
        self.index = index
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.buf = b""
        self.sent_at = 0.0
        self.busy = False


_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


def _response_complete(buf: bytes) -> tuple[int, int] | None:
    """``(status, length of the whole response)`` once ``buf`` holds one complete response."""
    head_end = buf.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    m = _CONTENT_LENGTH.search(buf, 0, head_end + 2)
    if m is None:
        raise RuntimeError("response without content-length")
    total = head_end + 4 + int(m.group(1))
    if len(buf) < total:
        return None
    return int(buf[9:12]), total


def run_http(
    url: str, conns: int, duration: float, agents: int, rate: float | None, warmup: float, prime: bool = True,
    timeline: bool = False,
) -> dict[str, Any]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    prefix = (
        f"POST /workers.status_report HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Content-Type: application/json\r\nContent-Length: "
    ).encode()
    reports = fleet_reports(agents)
    if prime:
        _prime_http(url, reports, agents)
    _ready()
    sel = selectors.DefaultSelector()
    pool = [_HttpConn(i, host, port) for i in range(conns)]
    for c in pool:
        sel.register(c.sock, selectors.EVENT_READ, c)
    latencies: list[float] = []
    sent: list[float] = []
    errors = 0
    done = 0
    period = conns / rate if rate else 0.0  # seconds between two requests of one connection
    t_start = time.perf_counter()
    measure_from = t_start + warmup
    t_end = measure_from + duration
    next_due = [t_start + i * period / conns for i in range(conns)] if rate else [t_start] * conns

    def send(c: _HttpConn, due: float) -> None:
        body = orjson.dumps(next(reports))
        c.sock.sendall(prefix + str(len(body)).encode() + b"\r\n\r\n" + body)
        c.sent_at, c.busy = due, True

    now = time.perf_counter()
    marked = False
    while now < t_end:
        if not marked and now >= measure_from:
            marked = _mark("start")
        for i, c in enumerate(pool):
            if not c.busy and next_due[i] <= now:
                send(c, next_due[i] if rate else now)
        if rate:
            idle = [next_due[i] for i, c in enumerate(pool) if not c.busy]
            timeout = max(0.0, min(idle) - now) if idle else 0.05
        else:
            timeout = 0.05
        for key, _ in sel.select(timeout):
            c = key.data
            data = c.sock.recv(65536)
            if not data:
                raise RuntimeError("the server closed a connection")
            c.buf += data
            got = _response_complete(c.buf)
            if got is None:
                continue
            status, total = got
            c.buf = c.buf[total:]
            c.busy = False
            t = time.perf_counter()
            if c.sent_at >= measure_from:
                done += 1
                latencies.append(t - c.sent_at)
                if timeline:
                    sent.append(c.sent_at)
                errors += status != 200
            next_due[c.index] = next_due[c.index] + period if rate else t
        now = time.perf_counter()
    _mark("end")
    elapsed = now - measure_from
    for c in pool:
        c.sock.close()
    result = _summary("http", done, errors, elapsed, latencies)
    if timeline:  # [scheduled send (epoch s), latency ms] of each measured request (tail_snapshot.py)
        to_wall = time.time() - time.perf_counter()
        result["timeline"] = [[round(s + to_wall, 4), round(lat * 1e3, 2)] for s, lat in zip(sent, latencies)]
    return result


# --- stream ------------------------------------------------------------------------------------------


def run_stream(
    url: str, duration: float, agents: int, window: int, warmup: float, call: str = "workers.status_report"
) -> dict[str, Any]:
    """Pipelined calls over one connection. Bodies are generated before the clock starts (the Python
    generator would otherwise cost more than the server's work per call); each agent's timestamps still
    advance, as they would live."""
    from workerhub.client import StreamClient

    batch = 2000
    reports = fleet_reports(agents, seed=1)
    pool = [next(reports) for _ in range(max(batch * 10, agents))]
    bodies = iter(pool)

    def calls() -> Iterator[tuple[str, Any]]:
        nonlocal bodies
        for _ in range(batch):
            body = next(bodies, None)
            if body is None:  # pool used up: the next lap, each agent 10 s later
                for b in pool:
                    b["timestamp"] += REPORT_PERIOD_MS * len(pool) // agents
                bodies = iter(pool)
                body = next(bodies)
            yield call, (body if call == "workers.status_report" else None)

    done = errors = 0
    first_error: str | None = None
    _ready()
    with StreamClient(url) as client:
        t_end_warm = time.perf_counter() + warmup
        while time.perf_counter() < t_end_warm:
            client.call_many(calls(), window=window)
        _mark("start")
        t0 = time.perf_counter()
        while (now := time.perf_counter()) < t0 + duration:
            replies = client.call_many(calls(), window=window)
            done += len(replies)
            bad = [r for r in replies if not r.ok]
            errors += len(bad)
            if bad and first_error is None:
                first_error = bad[0].meta.get("result_msg")
    _mark("end")
    out = _summary("stream", done, errors, now - t0, [])
    if first_error is not None:
        out["first_error"] = first_error
    return out


def _ready() -> None:
    """With ``--sync``: say READY on stdout and wait for a line on stdin, so that the driver can start
    several load generators' timed phases together."""
    if _SYNC:
        print("READY", flush=True)
        sys.stdin.readline()


_SYNC = False


def _mark(what: str) -> bool:
    """Tell the benchmark driver (reading our stdout) that the measured window starts or ends, so it
    samples the server's CPU time exactly around it."""
    print(f"MEASURE {what}", flush=True)
    return True


def _prime_http(url: str, reports: Iterator[dict[str, Any]], agents: int) -> None:
    """Send each agent's first report before anything is timed: the server registers every agent (an actor
    and a history each) once, which is not the steady state being measured."""
    from workerhub.client import HttpClient

    with HttpClient(url) as client:
        for _ in range(agents):
            client.call("workers.status_report", next(reports))


def _summary(kind: str, done: int, errors: int, elapsed: float, latencies: list[float]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "transport": kind,
        "requests": done,
        "errors": errors,
        "seconds": elapsed,
        "rps": done / elapsed if elapsed > 0 else 0.0,
        "loadgen_cpu_s": sum(os.times()[:2]),
    }
    if latencies:
        q = statistics.quantiles(latencies, n=100, method="inclusive")
        out["p50_ms"], out["p99_ms"] = q[49] * 1e3, q[98] * 1e3
        out["max_ms"] = max(latencies) * 1e3
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("transport", choices=["http", "stream"])
    ap.add_argument("--url", required=True)
    ap.add_argument("--conns", type=int, default=32, help="HTTP keep-alive connections")
    ap.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    ap.add_argument("--warmup", type=float, default=2.0, help="seconds of load before measuring")
    ap.add_argument("--agents", type=int, default=1000, help="simulated agents (distinct worker ids)")
    ap.add_argument("--rate", type=float, default=None, help="HTTP open loop: total req/s scheduled")
    ap.add_argument(
        "--no-prime", action="store_true", help="HTTP: do not register the agents first (time the fleet's growth)"
    )
    ap.add_argument("--window", type=int, default=256, help="stream: calls in flight")
    ap.add_argument("--call", default="workers.status_report", help="stream: the call (debug.ping: no body)")
    ap.add_argument(
        "--sync", action="store_true", help="after priming, print READY and wait for a stdin line"
    )
    ap.add_argument("--timeline", action="store_true", help="HTTP: add each request's send time and latency")
    a = ap.parse_args()
    global _SYNC
    _SYNC = a.sync
    if a.transport == "http":
        result = run_http(a.url, a.conns, a.duration, a.agents, a.rate, a.warmup, not a.no_prime, a.timeline)
    else:
        result = run_stream(a.url, a.duration, a.agents, a.window, a.warmup, a.call)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
