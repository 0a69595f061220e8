"""Shared plumbing of the benchmarks: pinned server processes, their CPU time, the load generator."""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
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
        cmd = [sys.executable, "-m", "workerhub", "serve", "--port", str(port), "--log-level", "warning"]
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
    """Run loadgen.py with ``args``; adds the server's CPU use over the run (util, µs per request)."""
    cmd = _pinned([sys.executable, os.path.join(HERE, "loadgen.py"), *args], LOADGEN_CORE, pin)
    c0, t0 = cpu_seconds(server_pid), time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    c1, t1 = cpu_seconds(server_pid), time.perf_counter()
    if out.returncode != 0:
        raise RuntimeError(f"loadgen failed: {out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    util = (c1 - c0) / (t1 - t0)
    result["server_cpu_util"] = util
    result["server_cpu_us_per_req"] = util / result["rps"] * 1e6 if result["rps"] else float("nan")
    return result


def median(rows: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def spread(rows: list[dict[str, Any]], key: str) -> str:
    values = [r[key] for r in rows]
    return f"{min(values):.0f}-{max(values):.0f}"
