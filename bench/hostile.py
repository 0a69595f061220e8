"""Hostile clients against a real server (issue #9): what happens, server RSS, and debug.ping latency meanwhile.

Starts ``workerhub serve`` as a subprocess on loopback (fresh per case, default limits, ``--no-persist``,
the msgpack stream on) with its open-file soft limit at 1,024, the usual default, and runs, each bounded:

  wide      one status_report with 100,000 cpu_usage values, then 5 ordinary workers report in 2 buckets
  ids       20,000 throw-away worker ids, one status_report each (pipelined over the stream)
  idle      1,200 stream connections opened and left idle for 3 s
  partial   200 stream connections each sending 4 MiB minus one byte of a frame, held 5 s
  int64     reports at 2^62 and 2^63-1 ms, then get_stats / get_activity_report over them

A thread pings ``debug.ping`` over HTTP every 10 ms during each case (its own keep-alive connection; a new
one after a failure) and samples the server's RSS. A case stops early when RSS passes ``--max-rss-mb``.

    python bench/hostile.py                      # every case
    python bench/hostile.py --cases ids,idle     # some
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Self

import httpx
import msgpack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import free_port

NOW_MS = 1_764_000_000_000
MIB = 1024 * 1024


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


@contextmanager
def server(extra: list[str]) -> Iterator[dict[str, Any]]:
    port, sport = free_port(), free_port()
    # The soft open-file limit a shell usually gives (1,024); the server may raise it to the hard limit.
    start = (
        "import resource, runpy; hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]; "
        "resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard)); "
        "runpy.run_module('workerhub', run_name='__main__')"
    )
    cmd = [
        sys.executable,
        "-c",
        start,
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--msgpack-port",
        str(sport),
        "--log-level",
        "error",
        "--no-persist",
        *extra,
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"server exited: {proc.stderr.read().decode()[-500:] if proc.stderr else ''}"
                )
            try:
                if httpx.post(f"http://127.0.0.1:{port}/debug.ping", json={}, timeout=1).status_code == 200:
                    socket.create_connection(("127.0.0.1", sport), 1).close()
                    break
            except (httpx.HTTPError, OSError):
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
        yield {
            "http": f"http://127.0.0.1:{port}",
            "stream": ("127.0.0.1", sport),
            "pid": proc.pid,
            "proc": proc,
        }
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Watch:
    """Pings debug.ping over HTTP and samples RSS in a thread while a case runs."""

    def __init__(self, srv: dict[str, Any], max_rss: int) -> None:
        self.srv, self.max_rss = srv, max_rss
        self.lat: list[float] = []
        self.failures = 0
        self.peak = self.start_rss = rss(srv["pid"])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        client = httpx.Client(base_url=self.srv["http"], timeout=5)
        while not self._stop.is_set():
            t0 = time.perf_counter()
            try:
                ok = client.post("/debug.ping", json={}).status_code == 200
            except httpx.HTTPError:
                ok = False
            if ok:
                self.lat.append(time.perf_counter() - t0)
            else:
                self.failures += 1
                client.close()
                client = httpx.Client(base_url=self.srv["http"], timeout=5)
            try:
                self.peak = max(self.peak, rss(self.srv["pid"]))
            except OSError:
                break
            self._stop.wait(0.01)
        client.close()

    @property
    def too_big(self) -> bool:
        return self.peak > self.max_rss

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def frame(obj: Any) -> bytes:
    payload = msgpack.packb(obj, use_bin_type=True)
    return struct.pack(">I", len(payload)) + payload


def read_reply(sock: socket.socket) -> dict[str, Any] | None:
    """One reply frame, or None when the server closed (or reset) without one."""
    try:
        head = sock.recv(4, socket.MSG_WAITALL)
        if len(head) < 4:
            return None
        (n,) = struct.unpack(">I", head)
        return msgpack.unpackb(sock.recv(n, socket.MSG_WAITALL), raw=False)  # type: ignore[no-any-return]
    except OSError:
        return None


def code_of(reply: dict[str, Any] | None) -> str:
    return "closed" if reply is None else f"{reply['meta']['result_code']}/{reply['meta']['result_subcode']}"


def counts(codes: list[str]) -> str:
    return ", ".join(f"{c} x{codes.count(c)}" for c in sorted(set(codes)))


def post(srv: dict[str, Any], name: str, body: Any) -> str:
    try:
        r = httpx.post(f"{srv['http']}/{name}", json=body, timeout=60)
    except httpx.HTTPError as exc:
        return type(exc).__name__
    meta = r.json()["meta"]
    return f"{meta['result_code']}/{meta['result_subcode']}"


# --- the cases ------------------------------------------------------------------------------------------------


def case_wide(srv: dict[str, Any], watch: Watch) -> str:
    wide = post(
        srv,
        "workers.status_report",
        {"worker": "wide", "timestamp": NOW_MS, "machine_stats": {"cpu_usage": [1.0] * 100_000}},
    )
    others: list[str] = []
    for w in range(5):
        for bucket in range(3):  # the third report closes the second 10 min bucket
            if watch.too_big:
                return f"wide report {wide}; stopped at RSS limit after {len(others)} reports"
            body = {
                "worker": f"w{w}",
                "timestamp": NOW_MS + bucket * 601_000,
                "machine_stats": {"cpu_usage": [10.0, 20.0], "memory_used": 1.0},
            }
            others.append(post(srv, "workers.status_report", body))
    return f"wide report {wide}; 5 workers x 3 reports: {counts(others)}"


def case_ids(srv: dict[str, Any], watch: Watch) -> str:
    host, port = srv["stream"]
    sock = socket.create_connection((host, port), 60)
    stats = {
        "cpu_usage": [12.5] * 8,
        "gpu_usage": [50.0] * 2,
        "memory_used": 1024.0,
        "memory_free": 2048.0,
        "network_rx": 1.0,
        "network_tx": 1.0,
        "disk_free_home": 50.0,
    }
    codes: list[str] = []
    before = rss(srv["pid"])
    batch = 200
    for start in range(0, 20_000, batch):
        if watch.too_big:
            break
        data = b"".join(
            frame(
                {
                    "id": i,
                    "call": "workers.status_report",
                    "body": {"worker": f"throwaway-{i}", "timestamp": NOW_MS, "machine_stats": stats},
                }
            )
            for i in range(start, start + batch)
        )
        sock.sendall(data)
        codes += [code_of(read_reply(sock)) for _ in range(batch)]
    sock.close()
    accepted = codes.count("200/0")
    time.sleep(0.5)
    grown = rss(srv["pid"]) - before
    per_id = f"{grown / accepted / 1024:.1f} KiB per accepted id" if accepted else "no id accepted"
    return f"{len(codes)} reports: {counts(codes)}; RSS +{grown / MIB:.0f} MB, {per_id}"


def case_idle(srv: dict[str, Any], watch: Watch) -> str:
    host, port = srv["stream"]
    socks: list[socket.socket] = []
    failed = 0
    for _ in range(1200):
        try:
            socks.append(socket.create_connection((host, port), 5))
        except OSError:
            failed += 1
    time.sleep(3)
    # a refused connection has a 503 frame waiting (or is closed); an accepted idle one has nothing to read
    refused = 0
    for s in socks:
        s.setblocking(False)
        try:
            if s.recv(1, socket.MSG_PEEK) is not None:
                refused += 1
        except BlockingIOError:
            pass
        except OSError:
            refused += 1
    probe = socket.create_connection((host, port), 5)
    probe.sendall(frame({"id": 1, "call": "debug.ping", "body": {}}))
    probe_code = code_of(read_reply(probe))
    probe.close()
    for s in socks:
        s.close()
    return (
        f"{len(socks)} connected ({failed} connect errors), {len(socks) - refused} held open, "
        f"{refused} refused/closed; a new stream ping: {probe_code}"
    )


def case_partial(srv: dict[str, Any], watch: Watch) -> str:
    host, port = srv["stream"]
    size = 4 * MIB
    partial = struct.pack(">I", size) + bytes(size - 1)
    socks: list[socket.socket] = []
    codes: list[str] = []
    for _ in range(200):
        if watch.too_big:
            break
        s = socket.create_connection((host, port), 10)
        try:
            s.sendall(partial)
        except OSError:
            codes.append("send failed")
        socks.append(s)
    time.sleep(5)
    held = rss(srv["pid"])
    for s in socks:
        s.setblocking(False)
        try:
            head = s.recv(4, socket.MSG_PEEK)
            if not head:
                codes.append("closed")
                continue
            s.setblocking(True)
            s.settimeout(2)
            codes.append(code_of(read_reply(s)))
        except BlockingIOError:
            codes.append("held")
        except OSError:
            codes.append("reset")
    for s in socks:
        s.close()
    return f"{len(socks)} connections after 5 s: {counts(codes)}; RSS while held {held / MIB:.0f} MB"


def case_int64(srv: dict[str, Any], watch: Watch) -> str:
    out = []
    out.append(
        "ok "
        + post(
            srv,
            "workers.status_report",
            {"worker": "ok", "timestamp": NOW_MS, "machine_stats": {"cpu_usage": [5.0]}},
        )
    )
    for name, ts in (("2^62", 2**62), ("2^63-1", 2**63 - 1)):
        out.append(
            f"report@{name} "
            + post(
                srv,
                "workers.status_report",
                {"worker": name, "timestamp": ts, "machine_stats": {"cpu_usage": [5.0]}},
            )
        )
    items = [{"key": "cpu_usage", "aggregation": "max"}]
    span = {"from_date": 0, "to_date": 2**62 // 1000, "interval": 86400 * 365 * 100}
    r = httpx.post(f"{srv['http']}/workers.get_stats", json={**span, "items": items}, timeout=60).json()
    answered = r["data"].get("workers", [])
    dates = [d for w in answered for m in w["metrics"] for d in m["dates"]]
    out.append(
        f"get_stats[0,2^62ms] {r['meta']['result_code']}/{r['meta']['result_subcode']} "
        f"workers={len(answered)} of 3" + (f" dates {min(dates)}..{max(dates)}" if dates else "")
    )
    r = httpx.post(
        f"{srv['http']}/workers.get_stats",
        json={
            "from_date": NOW_MS / 1000 - 3600,
            "to_date": NOW_MS / 1000 + 3600,
            "interval": 60,
            "items": items,
        },
        timeout=60,
    ).json()
    out.append(f"get_stats[now] workers={len(r['data'].get('workers', []))}")
    out.append("activity[0,2^62ms] " + post(srv, "workers.get_activity_report", span))
    return "; ".join(out)


CASES: dict[str, Callable[[dict[str, Any], Watch], str]] = {
    "wide": case_wide,
    "ids": case_ids,
    "idle": case_idle,
    "partial": case_partial,
    "int64": case_int64,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument(
        "--max-rss-mb", type=int, default=3000, help="stop a case once the server's RSS passes this"
    )
    ap.add_argument("--server-arg", action="append", default=[], help="extra `workerhub serve` argument")
    args = ap.parse_args()
    rows = []
    for name in args.cases.split(","):
        with server(args.server_arg) as srv, Watch(srv, args.max_rss_mb * MIB) as watch:
            t0 = time.perf_counter()
            what = CASES[name](srv, watch)
            took = time.perf_counter() - t0
            alive = srv["proc"].poll() is None
        lat = sorted(watch.lat) or [float("nan")]
        rows.append(
            (
                name,
                what + ("" if alive else "; SERVER EXITED"),
                watch.start_rss / MIB,
                watch.peak / MIB,
                statistics.median(lat) * 1000,
                lat[-1] * 1000,
                watch.failures,
                took,
            )
        )
    print("| case | what happens | RSS start → peak (MB) | ping p50 / max (ms) | ping failures | s |")
    print("|---|---|---|---|---|---|")
    for name, what, r0, r1, p50, pmax, fails, took in rows:
        print(f"| {name} | {what} | {r0:.0f} → {r1:.0f} | {p50:.1f} / {pmax:.0f} | {fails} | {took:.1f} |")


if __name__ == "__main__":
    main()
