"""A start with missing data is refused (issue #9 item 6): when the journal follows a snapshot that is not
there, ``workerhub serve`` exits 1 with one line naming what is missing; ``--allow-partial-start`` forces
the start and says so loudly."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx

from .test_crash import T0, reported, serve


def _build(data_dir: Path) -> None:
    """Two reports before a snapshot, one after it (journal only), then a kill: no final snapshot."""
    with serve(data_dir, "--snapshot-interval", "3600") as (proc, url):
        for i in range(2):
            body = {"worker": "w1", "timestamp": (T0 + i) * 1000, "machine_stats": {"cpu_usage": [i + 1]}}
            assert httpx.post(f"{url}/workers.status_report", json=body).status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    with serve(data_dir, "--snapshot-interval", "3600") as (proc, url):
        body = {"worker": "w1", "timestamp": (T0 + 5) * 1000, "machine_stats": {"cpu_usage": [9]}}
        assert httpx.post(f"{url}/workers.status_report", json=body).status_code == 200
        proc.kill()
        proc.wait()


def _start(data_dir: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "workerhub", "serve", "--port", "0", "--data-dir", str(data_dir), *flags]
    return subprocess.run([*cmd, "--log-level", "error"], capture_output=True, text=True, timeout=30, check=False)


def test_a_journal_without_its_snapshot_refuses_to_start_with_one_line(tmp_path: Path) -> None:
    _build(tmp_path)
    snapshot = tmp_path / "snapshot.msgpack"
    snapshot.unlink()
    done = _start(tmp_path)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"workerhub: {snapshot} is missing: journal segment "), lines[0]
    assert "--allow-partial-start" in lines[0]
    assert sorted(p.name for p in tmp_path.glob("journal-*.wal")), "nothing was deleted by the refusal"


def test_allow_partial_start_forces_it_loudly_and_serves_the_journal_part(tmp_path: Path) -> None:
    _build(tmp_path)
    (tmp_path / "snapshot.msgpack").unlink()
    with serve(tmp_path, "--allow-partial-start") as (proc, url):
        assert reported(url, "w1") == {(T0 + 5) * 1000}  # only what the journal held
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert proc.stderr is not None and "STARTING WITH PARTIAL DATA" in proc.stderr.read()
    # the forced start wrote a new snapshot: the directory is whole again and starts without the flag
    with serve(tmp_path) as (_proc, url):
        assert reported(url, "w1") == {(T0 + 5) * 1000}


def test_an_intact_directory_and_a_fresh_one_start_without_the_flag(tmp_path: Path) -> None:
    _build(tmp_path)
    with serve(tmp_path) as (_proc, url):
        assert reported(url, "w1") == {T0 * 1000, (T0 + 1) * 1000, (T0 + 5) * 1000}
    with serve(tmp_path / "fresh") as (_proc, url):
        assert reported(url, "w1") == set()
