"""Testing an agent against a real workerhub, without sleeping (the example of docs/testing.md).

Needs only ``pip install workerhub pytest``: the workerhub pytest plugin loads itself and provides the
fixtures used here (``workerhub``, ``workerhub_url``, ``workerhub_client``). Each test starts from an empty
server; ``workerhub.advance_clock(seconds)`` moves the server's time, so a 600 s timeout takes no time.
"""

from __future__ import annotations

from typing import Any

import pytest

from workerhub.testing import ApiError, Client, WorkerhubServer

# Report timestamps are epoch milliseconds; get_stats ranges are epoch seconds. T0 sits on a 10-minute boundary.
T0 = 1_700_000_400  # seconds


class FakeAgent:
    """Stands in for the code under test: an agent that registers, reports its machine, and leaves."""

    def __init__(self, server_url: str, worker_id: str, *, timeout: int = 600) -> None:
        self.api = Client(server_url)
        self.worker_id = worker_id
        self.timeout = timeout

    def start(self, queues: list[str]) -> None:
        self.api.call("workers.register", worker=self.worker_id, timeout=self.timeout, queues=queues)

    def report(self, at_seconds: float, *, cpu: list[float], memory_used: float, task: str | None = None) -> None:
        body: dict[str, Any] = {
            "worker": self.worker_id,
            "timestamp": int(at_seconds * 1000),
            "machine_stats": {"cpu_usage": cpu, "memory_used": memory_used},
        }
        if task is not None:
            body["task"] = task
        self.api.call("workers.status_report", **body)

    def stop(self) -> None:
        self.api.call("workers.unregister", worker=self.worker_id)


def worker_ids(client: Client) -> list[str]:
    return [w["id"] for w in client.call("workers.get_all", last_seen=0)["workers"]]


def test_agent_registers_and_reports(workerhub_url: str, workerhub_client: Client) -> None:
    agent = FakeAgent(workerhub_url, "gpu-box-1")
    agent.start(queues=["default"])
    agent.report(T0 + 5, cpu=[10.0, 30.0], memory_used=1024, task="task-1")
    agent.report(T0 + 15, cpu=[50.0, 70.0], memory_used=2048, task="task-1")

    (worker,) = workerhub_client.call("workers.get_all")["workers"]
    assert worker["id"] == "gpu-box-1"
    assert worker["queues"] == [{"id": "default"}]
    assert worker["task"]["id"] == "task-1"

    keys = workerhub_client.call("workers.get_metric_keys", worker_ids=["gpu-box-1"])["categories"]
    assert {c["name"]: c["metric_keys"] for c in keys} == {"cpu": ["cpu_usage"], "memory": ["memory_used"]}

    stats = workerhub_client.call(
        "workers.get_stats",
        worker_ids=["gpu-box-1"],
        from_date=T0,
        to_date=T0 + 60,
        interval=60,
        items=[{"key": "cpu_usage", "aggregation": "max"}, {"key": "memory_used", "aggregation": "avg"}],
    )["workers"]
    metrics = {m["metric"]: m["stats"] for m in stats[0]["metrics"]}
    # every bucket of the range (zero-filled), its dates epoch ms and bucket-aligned, on each stat (API 2.32+)
    assert metrics["cpu_usage"] == [
        {"aggregation": "max", "dates": [T0 * 1000], "values": [70.0], "resource_series": []}
    ]
    assert metrics["memory_used"] == [
        {"aggregation": "avg", "dates": [T0 * 1000], "values": [1536.0], "resource_series": []}
    ]

    agent.stop()
    assert worker_ids(workerhub_client) == []


def test_silent_agent_expires_after_its_timeout(workerhub: WorkerhubServer) -> None:
    agent = FakeAgent(workerhub.url, "flaky-box", timeout=600)
    agent.start(queues=["default"])

    workerhub.advance_clock(599)  # ten minutes later, in no time
    assert worker_ids(workerhub.client) == ["flaky-box"]

    workerhub.advance_clock(2)  # the timeout has passed: the server dropped the worker
    assert worker_ids(workerhub.client) == []
    agent.stop()  # unregistering a worker that is gone is not an error (API 2.32+; 2.4 answered 400/1004)


def test_reports_keep_an_agent_alive(workerhub: WorkerhubServer) -> None:
    agent = FakeAgent(workerhub.url, "busy-box", timeout=60)
    agent.start(queues=[])
    for minute in range(10):  # each report renews the 60 s timeout
        workerhub.advance_clock(50)
        agent.report(T0 + 60 * minute, cpu=[20.0], memory_used=512)
    assert worker_ids(workerhub.client) == ["busy-box"]

    workerhub.advance_clock(61)
    assert worker_ids(workerhub.client) == []
    # its stats outlive the registration
    stats = workerhub.client.call(
        "workers.get_stats", from_date=T0, to_date=T0 + 600, interval=600, items=[{"key": "cpu_usage"}]
    )["workers"]
    assert stats[0]["worker"] == "busy-box"
    assert stats[0]["metrics"][0]["stats"][0]["values"] == [20.0]


def test_each_test_starts_from_an_empty_server(workerhub_client: Client) -> None:
    assert worker_ids(workerhub_client) == []
    with pytest.raises(ApiError) as err:
        workerhub_client.call("workers.get_metric_keys")
    assert err.value.codes == (400, 1005)  # no stats at all
