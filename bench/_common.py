"""Shared plumbing of the benchmarks: pinned server processes, their CPU time, the load generator."""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER_CORE, LOADGEN_CORE = "0", "1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pinned(cmd: list[str], core: str, pin: bool) -> list[str]:
    return ["taskset", "-c", core, *cmd] if pin else cmd


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


@contextmanager
def server(kind: str, *, pin: bool, stream: bool = False) -> Iterator[dict[str, Any]]:
    """Start ``workerhub`` or ``reference`` on free ports (pinned to core 0); yields urls and the pid."""
    port = free_port()
    info: dict[str, Any] = {"http": f"http://127.0.0.1:{port}"}
    if kind == "workerhub":
        # --no-persist: the comparison is with a handler that keeps nothing (bench_journal.py prices the journal)
        cmd = [sys.executable, "-m", "workerhub", "serve", "--port", str(port), "--log-level", "warning", "--no-persist"]
        if stream:
            sport = free_port()
            cmd += ["--msgpack-port", str(sport)]
            info["stream"] = f"msgpack://127.0.0.1:{sport}"
    else:
        cmd = [sys.executable, os.path.join(HERE, "reference_server.py"), str(port)]
    proc = subprocess.Popen(_pinned(cmd, SERVER_CORE, pin), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_port(port, proc)
        if stream:
            _wait_port(int(info["stream"].rsplit(":", 1)[1]), proc)
        info["pid"] = proc.pid
        yield info
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def load(server_pid: int, args: list[str], *, pin: bool) -> dict[str, Any]:
    """Run loadgen.py with ``args``; adds the server's CPU use over the measured window (util, µs/request).

    loadgen prints ``MEASURE start`` / ``MEASURE end`` around its measured window (after priming and
    warm-up); the server's CPU time is sampled at those lines.
    """
    return load_together([(server_pid, args)], pin=pin)[0]


def load_together(runs: list[tuple[int, list[str]]], *, pin: bool) -> list[dict[str, Any]]:
    """Several loadgen runs whose timed phases start together: each primes its server, says READY, and
    all are released at once. One thread per run reads its output and samples its server's CPU."""
    procs = [
        subprocess.Popen(
            _pinned(
                [sys.executable, "-u", os.path.join(HERE, "loadgen.py"), "--sync", *args], LOADGEN_CORE, pin
            ),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _pid, args in runs
    ]
    ready = threading.Barrier(len(runs) + 1)
    results: list[Any] = [RuntimeError("no result")] * len(runs)

    def follow(i: int, pid: int, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        marks: dict[str, tuple[float, float]] = {}
        last = ""
        for line in proc.stdout:
            if line.startswith("READY"):
                try:
                    ready.wait()
                except threading.BrokenBarrierError:
                    pass
            elif line.startswith("MEASURE "):
                marks[line.split()[1]] = (cpu_seconds(pid), time.perf_counter())
            elif line.strip():
                last = line
        stderr = proc.stderr.read() if proc.stderr else ""
        if proc.wait() != 0 or "start" not in marks or "end" not in marks:
            ready.abort()
            results[i] = RuntimeError(f"loadgen failed: {stderr[-2000:]}")
            return
        result: dict[str, Any] = json.loads(last)
        (c0, t0), (c1, t1) = marks["start"], marks["end"]
        util = (c1 - c0) / (t1 - t0)
        result["server_cpu_util"] = util
        result["server_cpu_us_per_req"] = util / result["rps"] * 1e6 if result["rps"] else float("nan")
        results[i] = result

    threads = [
        threading.Thread(target=follow, args=(i, run[0], p)) for i, (run, p) in enumerate(zip(runs, procs))
    ]
    for t in threads:
        t.start()
    try:
        ready.wait(timeout=600)
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
    except threading.BrokenBarrierError:
        for p in procs:
            p.kill()
    for t in threads:
        t.join()
    for r in results:
        if isinstance(r, Exception):
            raise r
    return results


def median(rows: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def spread(rows: list[dict[str, Any]], key: str) -> str:
    values = [r[key] for r in rows]
    return f"{min(values):.0f}-{max(values):.0f}"


def stop_gc_pauses(proc: subprocess.Popen[str], timeout: float) -> tuple[str, dict[str, Any]]:
    """Stop a server run through ``gc_pauses.py`` (SIGINT, then a kill after ``timeout`` s); returns its
    stderr and the figures it printed there as ``GCSTATS {json}`` at exit ({} when it printed none)."""
    proc.send_signal(signal.SIGINT)
    try:
        _out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _out, err = proc.communicate()
    stats = [line for line in err.splitlines() if line.startswith("GCSTATS ")]
    return err, json.loads(stats[-1][8:]) if stats else {}
