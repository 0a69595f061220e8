"""workers.unregister (spec §2): the worker leaves get_all, its stats stay; unknown → 1004 (Q14)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from workerhub.testing import ServerHandle, running_server

from .support import JsonApi, client_for, get_stats, ms, report, worker_ids


def test_unregister_removes_the_worker(api: JsonApi) -> None:
    api.ok("workers.register", {"worker": "w1"})
    api.ok("workers.register", {"worker": "w2"})
    assert api.ok("workers.unregister", {"worker": "w1"}) == {}
    assert worker_ids(api, last_seen=0) == ["w2"]


def test_unregister_of_an_unknown_worker_is_1004(api: JsonApi) -> None:
    reply = api.call("workers.unregister", {"worker": "nobody"})
    assert reply.code == (400, 1004)
    assert reply.meta["result_msg"] == "worker is not registered: worker=nobody"
    assert reply.data == {}


def test_unregister_twice_is_1004_the_second_time(api: JsonApi) -> None:
    api.ok("workers.register", {"worker": "w1"})
    api.ok("workers.unregister", {"worker": "w1"})
    assert api.call("workers.unregister", {"worker": "w1"}).code == (400, 1004)


def test_unregister_after_expiry_is_1004(api: JsonApi, hub_server: ServerHandle) -> None:
    api.ok("workers.register", {"worker": "w1", "timeout": 5})
    hub_server.advance_clock(6)
    assert api.call("workers.unregister", {"worker": "w1"}).code == (400, 1004)


def test_unregister_of_an_auto_registered_worker(api: JsonApi) -> None:
    report(api, "w1", ms())
    api.ok("workers.unregister", {"worker": "w1"})
    assert worker_ids(api, last_seen=0) == []


def test_stats_outlive_unregister(api: JsonApi) -> None:  # quirk Q18
    report(api, "w1", ms(), {"cpu_usage": [10, 20]})
    api.ok("workers.unregister", {"worker": "w1"})
    [w] = get_stats(api, "cpu_usage")
    assert w["worker"] == "w1"
    assert w["metrics"][0]["stats"][0]["values"] == [15.0]
    assert api.ok("workers.get_metric_keys", {"worker_ids": ["w1"]})["categories"] == [
        {"name": "cpu", "metric_keys": ["cpu_usage"]}
    ]


def test_register_after_unregister_starts_a_fresh_entry(api: JsonApi) -> None:
    api.ok("workers.register", {"worker": "w1", "queues": ["q1"]})
    api.ok("workers.unregister", {"worker": "w1"})
    api.ok("workers.register", {"worker": "w1"})
    assert api.ok("workers.get_all", {"last_seen": 0})["workers"][0]["queues"] == []


def test_status_report_after_unregister_auto_registers_again(api: JsonApi) -> None:
    api.ok("workers.register", {"worker": "w1", "timeout": 30})
    api.ok("workers.unregister", {"worker": "w1"})
    report(api, "w1", ms())
    [w] = api.ok("workers.get_all", {"last_seen": 0})["workers"]
    assert w["register_timeout"] == 600


# --- HEAD's auto_unregister switch --------------------------------------------------------------------


@pytest.fixture(scope="module")
def lenient() -> Iterator[ServerHandle]:
    with running_server(auto_unregister=True) as handle:
        yield handle


@pytest.fixture
def lenient_api(lenient: ServerHandle) -> Iterator[JsonApi]:
    lenient.reset()
    with client_for(lenient) as client:
        yield JsonApi(client)


def test_auto_unregister_makes_unknown_workers_a_silent_success(lenient_api: JsonApi) -> None:
    assert lenient_api.ok("workers.unregister", {"worker": "nobody"}) == {}
    lenient_api.ok("workers.register", {"worker": "w1"})
    lenient_api.ok("workers.unregister", {"worker": "w1"})
    lenient_api.ok("workers.unregister", {"worker": "w1"})
    assert worker_ids(lenient_api, last_seen=0) == []
