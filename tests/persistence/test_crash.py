"""A real ``workerhub serve`` process: killed with SIGKILL under a stream of status reports, it loses no
acknowledged report in any fsync mode (the documented promise for a crash of the process); stopped with
SIGTERM it writes a final snapshot and exits 0; a bad snapshot stops it with one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

T0 = 1_700_000_000


@contextmanager
def serve(data_dir: Path, *flags: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    cmd = [sys.executable, "-m", "workerhub", "serve", "--max-api-version", "2.4",  # the seed's answers
           "--port", "0", "--data-dir", str(data_dir)]
    proc = subprocess.Popen(
        [*cmd, "--log-level", "warning", *flags], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if "listening on" not in line:
            proc.kill()
            raise AssertionError(f"server did not start: {line!r} {proc.communicate()[1]!r}")
        yield proc, line.split()[-1]
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


ACKS_BEFORE_KILL = 30
"""Acknowledged reports (all workers together) to wait for before the kill: the stream is under way."""


class Acks:
    """Counts acknowledged reports across the streaming threads; :attr:`enough` is set at ``target``."""

    def __init__(self, target: int) -> None:
        self._lock = threading.Lock()
        self._count = 0
        self._target = target
        self.enough = threading.Event()

    def add(self) -> None:
        with self._lock:
            self._count += 1
            if self._count >= self._target:
                self.enough.set()


def stream(url: str, worker: str, acked: list[int], stop: threading.Event, acks: Acks) -> None:
    """Send reports 1 s of report time apart until the server dies; record each acknowledged timestamp."""
    with httpx.Client(base_url=url, timeout=5) as client:
        i = 0
        while not stop.is_set():
            ts = (T0 + i) * 1000
            body = {"worker": worker, "timestamp": ts, "machine_stats": {"cpu_usage": [i + 1, 5], "memory_used": 7}}
            try:
                r = client.post("/workers.status_report", json=body)
            except httpx.HTTPError:
                return
            if r.status_code == 200:
                acked.append(ts)
                acks.add()
            i += 1


def reported(url: str, worker: str) -> set[int]:
    body = {"from_date": T0 - 10, "to_date": T0 + 100_000, "interval": 1, "items": [{"key": "cpu_usage"}],
            "worker_ids": [worker]}
    r = httpx.post(f"{url}/workers.get_stats", json=body, timeout=10)
    assert r.status_code == 200, r.text
    workers = r.json()["data"]["workers"]
    return set(workers[0]["metrics"][0]["dates"]) if workers else set()


@pytest.mark.parametrize("fsync", ["always", "interval", "never"])
def test_sigkill_under_load_loses_no_acknowledged_report(tmp_path: Path, fsync: str) -> None:
    workers = [f"w{k}" for k in range(3)]
    acked: dict[str, list[int]] = {w: [] for w in workers}
    with serve(tmp_path, "--journal-fsync", fsync) as (proc, url):
        stop = threading.Event()
        acks = Acks(ACKS_BEFORE_KILL)
        threads = [threading.Thread(target=stream, args=(url, w, acked[w], stop, acks)) for w in workers]
        for t in threads:
            t.start()
        # Kill once enough reports were acknowledged (the threads keep streaming, so the kill lands under
        # load); the timeout only keeps a broken server from hanging the suite.
        got_going = acks.enough.wait(timeout=120)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        stop.set()
        for t in threads:
            t.join()
    total = sum(len(a) for a in acked.values())
    assert got_going and total >= ACKS_BEFORE_KILL, f"only {total} reports acknowledged before the kill"
    with serve(tmp_path, "--journal-fsync", fsync) as (_proc, url):
        for w in workers:
            got = reported(url, w)
            missing = set(acked[w]) - got
            assert not missing, f"{len(missing)} acknowledged reports of {w} lost ({fsync})"
            assert len(got - set(acked[w])) <= 1, "only a request in flight at the kill may be extra"
    print(f"\n{fsync}: {total} acknowledged reports, all present after SIGKILL + restart")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_gracefully_with_a_final_snapshot(tmp_path: Path, signum: int) -> None:
    with serve(tmp_path) as (proc, url):
        for i in range(10):
            body = {"worker": "w1", "timestamp": (T0 + i) * 1000, "machine_stats": {"cpu_usage": [i + 1]}}
            assert httpx.post(f"{url}/workers.status_report", json=body).status_code == 200
        before = httpx.post(f"{url}/workers.get_all", json={"last_seen": 0}).json()["data"]
        proc.send_signal(signum)
        assert proc.wait(timeout=15) == 0
    assert (tmp_path / "snapshot.msgpack").exists()
    journal = sorted(tmp_path.glob("journal-*.wal"))
    assert len(journal) == 1 and journal[0].stat().st_size < 100, "the journal was compacted"
    with serve(tmp_path) as (_proc, url):
        assert len(reported(url, "w1")) == 10
        after = httpx.post(f"{url}/workers.get_all", json={"last_seen": 0}).json()["data"]
        assert after == before


def test_a_bad_snapshot_stops_serve_with_one_line(tmp_path: Path) -> None:
    with serve(tmp_path) as (proc, url):
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    snapshot = tmp_path / "snapshot.msgpack"
    snapshot.write_bytes(snapshot.read_bytes()[:-3])
    cmd = [sys.executable, "-m", "workerhub", "serve", "--max-api-version", "2.4",  # the seed's answers
           "--port", "0", "--data-dir", str(tmp_path)]
    done = subprocess.run([*cmd, "--log-level", "error"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"workerhub: {snapshot}: snapshot is truncated")


def test_snapshot_inspect_prints_a_summary(tmp_path: Path) -> None:
    with serve(tmp_path) as (proc, url):
        for i in range(3):
            body = {"worker": f"w{i}", "timestamp": (T0 + i) * 1000, "machine_stats": {"cpu_usage": [1, 2]}}
            httpx.post(f"{url}/workers.status_report", json=body)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    cmd = [sys.executable, "-m", "workerhub", "snapshot", "inspect", str(tmp_path / "snapshot.msgpack")]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout
    assert "format version        3" in out  # 3: workers carry system_tags (issue 10)
    assert "workers (registered)  3" in out and "series                6" in out and "samples               6" in out
    assert "2023-11-14T22:13:20+00:00 .. 2023-11-14T22:13:22+00:00" in out


def test_a_second_signal_forces_the_exit_and_the_journal_still_has_everything(tmp_path: Path) -> None:
    with serve(tmp_path) as (proc, url):
        for i in range(5):
            body = {"worker": "w1", "timestamp": (T0 + i) * 1000, "machine_stats": {"cpu_usage": [i + 1]}}
            assert httpx.post(f"{url}/workers.status_report", json=body).status_code == 200
        proc.send_signal(signal.SIGTERM)
        proc.send_signal(signal.SIGINT)  # a different signal: two of the same may merge while pending
        assert proc.wait(timeout=15) == 1
        assert proc.stderr is not None and "again, exiting now" in proc.stderr.read()
    assert not (tmp_path / "snapshot.msgpack").exists(), "no final snapshot when forced"
    with serve(tmp_path) as (_proc, url):
        assert len(reported(url, "w1")) == 5


def test_plain_serve_keeps_state_in_the_documented_default_directory(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path)}
    cmd = [sys.executable, "-m", "workerhub", "serve", "--max-api-version", "2.4",  # the seed's answers
           "--port", "0", "--log-level", "warning"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split()[-1]
        body = {"worker": "w1", "timestamp": T0 * 1000, "machine_stats": {"cpu_usage": [1]}}
        assert httpx.post(f"{url}/workers.status_report", json=body).status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert (tmp_path / "workerhub" / "snapshot.msgpack").exists()
