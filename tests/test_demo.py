"""The demo fleet against a real server: the workers, stats and activity it produces (bounded: ~2 s)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any, Literal

import httpx
import pytest

from workerhub.client import HttpClient
from workerhub.demo import DemoRunner, Fleet
from workerhub.testing import Client, ServerHandle, running_demo, running_server

HOUR = 3600


@pytest.fixture(scope="module")
def server() -> ServerHandle:
    with running_server(msgpack_port=0) as handle:
        yield handle


def test_fleet_is_deterministic_and_realistic() -> None:
    a, b = Fleet(40, seed=7), Fleet(40, seed=7)
    t = 1_796_000_000.0
    assert [a.report(w, t) for w in a.workers] == [b.report(w, t) for w in b.workers]
    assert Fleet(40, seed=8).report(Fleet(40, seed=8).workers[0], t) != a.report(a.workers[0], t)
    assert {len(a.report(w, t)["machine_stats"]["cpu_usage"]) for w in a.workers} <= {8, 16, 32, 48, 64}
    assert {w.gpus for w in a.workers} <= set(range(9)) and any(w.gpus for w in a.workers)
    assert any(w.ephemeral for w in a.workers) and not all(w.ephemeral for w in a.workers)
    # jobs start and finish: a worker runs several different tasks over a day, and is idle at times
    w = a.workers[0]
    tasks = [a.task(w, t + m * 60) for m in range(0, 24 * 60, 10)]
    assert len({x for x in tasks if x}) > 3 and None in tasks
    # diurnal: the fleet is busier in the afternoon than at night (UTC)
    day = t - t % 86400
    assert a.load(day + 15 * HOUR) > a.load(day + 3 * HOUR)
    # ephemeral workers come and go over a day
    e = next(w for w in a.workers if w.ephemeral)
    assert {a.present(e, t + h * HOUR) for h in range(48)} == {True, False}


@pytest.mark.parametrize("transport", ["stream", "http"])
def test_backfill_writes_history_and_live_fleet(
    server: ServerHandle, transport: Literal["http", "stream"]
) -> None:
    server.reset()
    fleet = Fleet(12, seed=3)
    now = time.time()
    with DemoRunner(server.url, fleet, transport=transport, stream_url=server.stream_url) as runner:
        sent = runner.backfill(2 * HOUR, step=300, now=now)
    expected = sum(fleet.present(w, t) for w in fleet.workers for t in _times(now, 2 * HOUR, 300))
    assert sent == expected
    live = {w["id"] for w in server.client.call("workers.get_all", last_seen=0)["workers"]}
    assert live == {w.id for w in fleet.workers if fleet.present(w, now)}
    # the history: one cpu_usage series per core of the first worker, over the backfilled range
    first = fleet.workers[0]
    stats = v24(server, "workers.get_stats", {
        "worker_ids": [first.id], "from_date": int(now - 2 * HOUR), "to_date": int(now), "interval": 600,
        "items": [{"key": "cpu_usage", "aggregation": "avg"}], "split_by_variant": True,
    })["workers"]  # fmt: skip
    assert len(stats[0]["metrics"]) == first.cores
    assert 10 <= len(stats[0]["metrics"][0]["dates"]) <= 13
    start = int(_times(now, 2 * HOUR, 300)[0]) // 600 * 600  # from the first sample's bucket on
    activity = v24(
        server, "workers.get_activity_report", {"from_date": start, "to_date": int(now), "interval": 600}
    )
    # distinct workers reporting per 10 min bucket, and those with a task, as the fleet predicts
    total: dict[int, set[str]] = {}
    active: dict[int, set[str]] = {}
    for t in _times(now, 2 * HOUR, 300):
        for w in fleet.workers:
            if fleet.present(w, t):
                bucket = int(t - t % 600) * 1000
                total.setdefault(bucket, set()).add(w.id)
                if fleet.task(w, t):
                    active.setdefault(bucket, set()).add(w.id)
    for kind, expected in (("total", total), ("active", active)):
        got = dict(zip(activity[kind]["dates"], activity[kind]["counts"], strict=True))
        assert got and len(got) >= len(expected) - 1  # the last bucket may be dropped (quirk)
        assert got == {d: len(expected[d]) for d in got}


def test_live_ticks_join_leave_and_time_out(server: ServerHandle) -> None:
    server.reset()
    fleet = Fleet(40, seed=1)
    e = [w for w in fleet.workers if w.ephemeral]
    # a moment at which some ephemeral worker goes away between two ticks an hour apart
    t0 = 1_796_000_000.0
    t1 = next(
        t0 + h * HOUR
        for h in range(200)
        if any(fleet.present(w, t0 + h * HOUR) and not fleet.present(w, t0 + (h + 1) * HOUR) for w in e)
    )
    t2 = t1 + HOUR
    with DemoRunner(server.url, fleet, timeout=60) as runner:
        runner.tick(t1)
        assert _listed(server) == {w.id for w in fleet.workers if fleet.present(w, t1)}
        runner.tick(t2)  # those gone unregister, or just stop reporting
        gone = {w.id for w in fleet.workers if fleet.present(w, t1) and not fleet.present(w, t2)}
        present = {w.id for w in fleet.workers if fleet.present(w, t2)}
        silent = _listed(server) - present
        assert gone and silent <= gone
        server.advance_clock(30)
        runner.tick(t2 + 30)
        server.advance_clock(31)  # 61 s after their last report: the silent ones have timed out
        assert _listed(server) == {w.id for w in fleet.workers if fleet.present(w, t2 + 30)}


def _listed(server: ServerHandle) -> set[str]:
    return {w["id"] for w in server.client.call("workers.get_all")["workers"]}


def test_running_demo_helper(server: ServerHandle) -> None:
    server.reset()
    with running_demo(server, 8, backfill=HOUR, step=600, seed=2) as runner:
        assert runner.sent > 8
        ids = {w["id"] for w in server.client.call("workers.get_all")["workers"]}
        assert ids and ids <= {w.id for w in runner.fleet.workers}


def test_cli_demo_backfill_only(server: ServerHandle) -> None:
    server.reset()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "workerhub",
            "demo",
            "--url",
            server.url,
            "--workers",
            "4",
            "--backfill",
            "30m",
            "--backfill-step",
            "5m",
            "--no-live",
            "--seed",
            "5",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert server.client.call("workers.get_all")["workers"]


def test_cli_demo_refuses_bad_arguments() -> None:
    bad = [["--workers", "-1"], ["--backfill", "soon"], ["--transport", "stream"], ["--access-key", "k"]]
    for extra in bad:
        out = subprocess.run(
            [sys.executable, "-m", "workerhub", "demo", "--url", "http://127.0.0.1:9", "--no-live", *extra],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 2, (extra, out.stderr)
        assert out.stderr.strip()


def test_serve_with_a_demo_fleet() -> None:
    """`workerhub serve --demo N`: the printed dashboard URL serves the page and the fleet is there."""
    env = {**os.environ, "WORKERHUB_LOG_LEVEL": "warning"}
    cmd = [sys.executable, "-m", "workerhub", "serve", "--port", "0", "--demo", "6", "--demo-backfill", "1h"]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env) as proc:
        try:
            assert proc.stdout is not None
            listening = proc.stdout.readline()
            assert (
                listening.startswith("workerhub listening on http://127.0.0.1:") and "msgpack://" in listening
            )
            dashboard = proc.stdout.readline().split()
            assert dashboard[0] == "dashboard:"
            url = dashboard[1].rstrip("/")
            assert "text/html" in httpx.get(url + "/").headers["content-type"]
            client = Client(url)
            fleet = Fleet(6, seed=0)
            for _ in range(300):  # the backfill runs in the server's process; bounded wait (~30 s at most)
                if _listed_at(client) == {w.id for w in fleet.workers if fleet.present(w, time.time())}:
                    break
                time.sleep(0.1)
            assert _listed_at(client) == {w.id for w in fleet.workers if fleet.present(w, time.time())}
            keys = client.call("workers.get_metric_keys")["categories"]
            assert {"cpu", "memory", "network", "disk"} <= {c["name"] for c in keys}
            client.close()
        finally:
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=30) == 0


def _listed_at(client: Client) -> set[str]:
    return {w["id"] for w in client.call("workers.get_all")["workers"]}


def v24(server: ServerHandle, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """A call on the 2.4 dialect (the shape the dashboard reads), whatever unversioned paths answer."""
    with HttpClient(server.url, version="2.4") as client:
        return client.call(name, body).unwrap()


def _times(now: float, seconds: float, step: float) -> list[float]:
    end = now - now % step
    return [end - k * step for k in range(int(seconds // step), 0, -1)]
