"""Issue 9, read side: series width per worker and its cap, the query budget, and queries that yield.

End to end against a real server (hypercorn, HTTP+JSON) with small limits, plus in-process checks of what
the wire cannot show (array widths, how often other tasks ran during a query).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import trio
import trio.lowlevel
import trio.testing

from workerhub.actors import open_hub
from workerhub.clock import Clock
from workerhub.config import Settings
from workerhub.errors import FieldsValueError
from workerhub.messages import ActivityQuery, StatsItem, StatsQuery, StatusReport
from workerhub.stats import StatsJob, WorkerHistory
from workerhub.stats import jobs as jobs_module
from workerhub.testing import running_server

T0_S = 1_700_002_800  # a whole hour
T0 = T0_S * 1000


def call(client: httpx.Client, name: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    r = client.post(f"/{name}", json=body)
    reply = r.json()
    return r.status_code, reply


def cpus(n: int) -> dict[str, Any]:
    return {"cpu_usage": [float(i) for i in range(n)]}


@pytest.fixture(scope="module")
def small() -> Iterator[httpx.Client]:
    with (
        running_server(max_series_per_worker=8, max_query_values=1000, max_api_version="2.4") as handle,
        httpx.Client(base_url=handle.url, timeout=10) as client,
    ):
        yield client


def test_a_report_past_the_series_cap_is_refused_naming_machine_stats(small: httpx.Client) -> None:
    ok = {"worker": "cap", "timestamp": T0, "machine_stats": cpus(6)}
    assert call(small, "workers.status_report", ok)[0] == 200
    wide = {"worker": "cap", "timestamp": T0 + 1000, "machine_stats": {**cpus(6), "gpu_usage": [1.0, 2.0, 3.0]}}
    status, reply = call(small, "workers.status_report", wide)
    assert (status, reply["meta"]["result_subcode"]) == (400, 12)
    assert "machine_stats" in reply["meta"]["result_msg"] and "max_series_per_worker" in reply["meta"]["result_msg"]
    # nothing of the refused report was recorded; the worker's known series still report, another worker
    # has its own allowance
    q = {"from_date": T0_S - 10, "to_date": T0_S + 10, "interval": 60, "items": [{"key": "gpu_usage"}]}
    assert call(small, "workers.get_stats", q)[1]["data"]["workers"] == []
    assert call(small, "workers.status_report", {**ok, "timestamp": T0 + 2000})[0] == 200
    other = {"worker": "cap2", "timestamp": T0, "machine_stats": {**cpus(6), "gpu_usage": [1.0, 2.0]}}
    assert call(small, "workers.status_report", other)[0] == 200


def test_a_query_over_budget_is_refused_naming_the_smallest_interval_served(small: httpx.Client) -> None:
    for w in range(5):
        body = {"worker": f"q{w}", "timestamp": T0 + 3_599_000, "machine_stats": {"memory_used": 1.0}}
        assert call(small, "workers.status_report", body)[0] == 200
        body = {"worker": f"q{w}", "timestamp": T0, "machine_stats": {"memory_used": 1.0}}
        assert call(small, "workers.status_report", body)[0] == 200
    q = {"from_date": T0_S, "to_date": T0_S + 3599, "items": [{"key": "memory_used"}]}
    status, reply = call(small, "workers.get_stats", {**q, "interval": 1})
    assert (status, reply["meta"]["result_subcode"]) == (400, 16)
    msg = reply["meta"]["result_msg"]
    assert "interval" in msg and "max_query_values" in msg
    best = int(msg.split("smallest interval served for this range is ")[1].split(" s")[0])
    # 5 workers x 1 series: at most 200 buckets; T0_S is a multiple of 18 s, so 3600 s / 18 s = 200 exactly
    assert best == 18
    assert call(small, "workers.get_stats", {**q, "interval": best})[0] == 200
    assert call(small, "workers.get_stats", {**q, "interval": best - 1})[0] == 400


def test_more_than_65535_buckets_per_series_are_refused() -> None:
    h = WorkerHistory()
    h.add(T0, False, [("cpu_usage", "0", 1.0)], 0.0)
    h.add(T0 + 2 * 86_400_000, False, [("cpu_usage", "0", 1.0)], 0.0)
    q = StatsQuery(T0_S, T0_S + 2 * 86_400, 1, (StatsItem("cpu_usage"),))
    with pytest.raises(
        FieldsValueError,
        match="172801 buckets per series, at most 65535.*smallest interval served for this range is 3 s",
    ):
        StatsJob({"w": h}, q)
    assert StatsJob({"w": h}, StatsQuery(T0_S, T0_S + 2 * 86_400, 3, (StatsItem("cpu_usage"),))).run()


def test_a_wide_report_widens_only_its_own_worker() -> None:
    """The reproduced memory blow-up: one worker's 100,000 cores made every worker's next bucket wide."""
    narrow, wide = WorkerHistory(), WorkerHistory()
    narrow.add(T0, False, [("cpu_usage", "0", 1.0)], 0.0)
    wide.add(T0, False, [("cpu_usage", str(i), 1.0) for i in range(100_000)], 0.0)
    for k in range(1, 4):  # later hours and days: new chunks and tier days for both
        narrow.add(T0 + k * 86_400_000, False, [("cpu_usage", "0", 1.0)], 0.0)
    assert len(narrow.layout) == 1 and len(wide.layout) == 100_000
    assert all(c.width == 1 for c in narrow._chunks.values())
    assert all(d.width == 1 for d in narrow._days.values())
    narrow._check()
    wide._check()


def test_workers_with_the_same_series_share_one_layout() -> None:
    a, b = WorkerHistory(), WorkerHistory()
    for h in (a, b):
        h.add(T0, False, [("cpu_usage", "0", 1.0), ("memory_used", "total", 2.0)], 0.0)
    assert a.layout is b.layout
    b.add(T0 + 1000, False, [("cpu_usage", "1", 1.0)], 0.0)
    assert a.layout is not b.layout and len(a.layout) == 2 and len(b.layout) == 3


def test_a_large_query_lets_other_tasks_run_between_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    """Counted, not timed: while get_stats and get_activity_report run over 40 workers in slices of about
    one worker, another task gets the loop between the slices."""
    monkeypatch.setattr(jobs_module, "SLICE_COST", 1)

    async def main() -> tuple[int, int]:
        async with open_hub(Settings(), clock=Clock(wall_at_start=T0_S)) as hub:
            for w in range(40):
                samples = (("cpu_usage", "0", float(w)),)
                await hub.status_report(StatusReport(worker=f"w{w}", timestamp=T0, samples=samples))
            turns = {"stats": 0, "activity": 0}
            phase = ["idle"]

            async def other() -> None:
                while phase[0] != "done":
                    if phase[0] in turns:
                        turns[phase[0]] += 1
                    await trio.lowlevel.checkpoint()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(other)
                phase[0] = "stats"
                answer = await hub.get_stats(StatsQuery(T0_S - 60, T0_S + 60, 60, (StatsItem("cpu_usage"),)))
                assert len(answer) == 40
                phase[0] = "activity"
                await hub.get_activity_report(ActivityQuery(T0_S - 60, T0_S + 60, 60))
                phase[0] = "done"
            return turns["stats"], turns["activity"]

    stats_turns, activity_turns = trio.run(main, clock=trio.testing.MockClock())
    assert stats_turns >= 30, stats_turns
    assert activity_turns >= 30, activity_turns
