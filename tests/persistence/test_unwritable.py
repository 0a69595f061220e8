"""A data directory that cannot be written: requests fail with 500/100 and are not applied, never acked.

Real conditions, not fakes: a small tmpfs that fills up (disk full) and one remounted read-only. Mounting
needs root (as in CI); elsewhere these tests skip.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from workerhub.testing import running_server

from ..support import JsonApi

T0 = 1_700_000_000


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=128k", "tmpfs", str(mnt)], capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _remount(mnt: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(mnt)], check=True, capture_output=True)


def _report(i: int, values: int = 1) -> dict:
    return {"worker": "w1", "timestamp": (T0 + i) * 1000, "machine_stats": {"cpu_usage": [i + 1] * values}}


def _count(api: JsonApi) -> int:
    q = {"from_date": T0 - 10, "to_date": T0 + 10_000, "interval": 1, "items": [{"key": "cpu_usage"}]}
    workers = api.ok("workers.get_stats", q)["workers"]
    return len(workers[0]["metrics"][0]["dates"]) if workers else 0


def test_read_only_data_dir_serves_what_it_has_and_refuses_changes_with_500_100(tmpfs: Path) -> None:
    data = tmpfs / "data"
    with (
        running_server(max_api_version="2.4", data_dir=str(data), journal_fsync="always") as server,
        httpx.Client(base_url=server.url) as c,
    ):
        api = JsonApi(c)
        api.ok("workers.register", {"worker": "w1", "queues": ["q1"]})
        for i in range(3):
            api.ok("workers.status_report", _report(i))
        before = api.ok("workers.get_all", {"last_seen": 0})
    _remount(tmpfs, "ro")
    with (
        running_server(max_api_version="2.4", data_dir=str(data), journal_fsync="always") as server,
        httpx.Client(base_url=server.url) as c,
    ):
        api = JsonApi(c)
        assert api.ok("workers.get_all", {"last_seen": 0}) == before
        for name, body in [
            ("workers.status_report", _report(10)),
            ("workers.register", {"worker": "w2"}),
            ("workers.unregister", {"worker": "w1"}),
        ]:
            reply = api.call(name, body)
            assert reply.code == (500, 100), (name, reply.meta)
            assert "journal" in reply.meta["result_msg"]
        assert api.ok("workers.get_all", {"last_seen": 0}) == before, "nothing was applied"
        assert _count(api) == 3
    _remount(tmpfs, "rw")
    with running_server(max_api_version="2.4", data_dir=str(data)) as server, httpx.Client(base_url=server.url) as c:
        api = JsonApi(c)
        assert api.ok("workers.get_all", {"last_seen": 0}) == before
        api.ok("workers.status_report", _report(11))
        assert _count(api) == 4


@pytest.mark.parametrize("fsync", ["always", "never"])
def test_a_full_disk_fails_requests_with_500_100_and_every_ack_survives(tmpfs: Path, fsync: str) -> None:
    data = tmpfs / "data"
    acked = 0
    with (
        running_server(max_api_version="2.4", data_dir=str(data), journal_fsync=fsync) as server,
        httpx.Client(base_url=server.url) as c,
    ):
        api = JsonApi(c)
        for i in range(2000):
            reply = api.call("workers.status_report", _report(i, values=60))
            if not reply.ok:
                assert reply.code == (500, 100), reply.meta
                break
            acked += 1
        else:
            pytest.fail("the 128k tmpfs never filled up")
        assert acked > 10
        assert _count(api) == acked, "the refused report was not applied"
        reply = api.call("workers.status_report", _report(5000, values=60))
        assert reply.code == (500, 100), "still full: still refused"
        assert _count(api) == acked
    with running_server(max_api_version="2.4", data_dir=str(data)) as server, httpx.Client(base_url=server.url) as c:
        assert _count(JsonApi(c)) == acked, "every acknowledged report is back after a restart"
