"""workers.register (spec §1, §3): create or completely replace a registration; timeout rules (Q13)."""

from __future__ import annotations

from datetime import datetime

import pytest

from workerhub.testing import ServerHandle

from .support import JsonApi, get_stats, ms, report, worker_ids, workers


def test_register_answers_empty_data_and_lists_the_worker(api: JsonApi) -> None:
    assert api.ok("workers.register", {"worker": "w1"}) == {}
    w = workers(api)["w1"]
    assert w["register_timeout"] == 600  # schema default
    assert w["queues"] == []
    assert w["ip"] == "127.0.0.1"  # the socket peer
    assert w["register_time"] == w["last_activity_time"]
    # a fresh registration has no task, queue, project or report yet: those fields are omitted, not null
    for absent in ("task", "queue", "project", "last_report_time"):
        assert absent not in w
    assert w["key"].startswith("worker_") and w["key"].endswith("_w1")


def test_register_keeps_the_given_queues(api: JsonApi) -> None:
    # queue ids are not validated (no queue store): any id is accepted
    api.ok("workers.register", {"worker": "w1", "queues": ["q1", "q2"]})
    assert workers(api)["w1"]["queues"] == [{"id": "q1"}, {"id": "q2"}]


@pytest.mark.parametrize("timeout", [0, None, -1, -600, 0.5])
def test_non_positive_or_null_timeout_fails_with_1002(api: JsonApi, timeout: object) -> None:
    reply = api.call("workers.register", {"worker": "w1", "timeout": timeout})
    assert reply.code == (400, 1002)
    assert reply.meta["result_msg"].startswith("worker registration failed (invalid timeout): timeout=")
    assert reply.meta["result_msg"].endswith(", worker=w1")
    assert reply.data == {}
    assert worker_ids(api, last_seen=0) == []


def test_1002_message_names_timeout_and_worker(api: JsonApi) -> None:
    reply = api.call("workers.register", {"worker": "w1", "timeout": 0})
    assert reply.meta["result_msg"] == "worker registration failed (invalid timeout): timeout=0, worker=w1"


@pytest.mark.parametrize(("sent", "stored"), [(2.9, 2), ("30", 30), (45, 45)])
def test_timeout_is_cast_with_int(api: JsonApi, sent: object, stored: int) -> None:
    api.ok("workers.register", {"worker": "w1", "timeout": sent})
    assert workers(api)["w1"]["register_timeout"] == stored


def test_empty_worker_id_is_accepted(api: JsonApi) -> None:  # quirk Q20
    api.ok("workers.register", {"worker": ""})
    assert worker_ids(api, last_seen=0) == [""]


def test_unknown_fields_are_ignored(api: JsonApi) -> None:
    # the SDK adds "method"; the agent sends extra fields such as is_daemon
    api.ok("workers.register", {"worker": "w1", "method": "get", "is_daemon": True, "whatever": {"x": 1}})
    assert worker_ids(api, last_seen=0) == ["w1"]


def test_reregister_replaces_the_entry_completely(api: JsonApi, hub_server: ServerHandle) -> None:
    api.ok("workers.register", {"worker": "w1", "timeout": 100, "queues": ["q1", "q2"]})
    report(api, "w1", ms(), task="t1", queue="q1")
    before = workers(api)["w1"]
    assert before["task"]["id"] == "t1" and before["queue"] == {"id": "q1"}
    hub_server.advance_clock(5)
    # no "already registered" error (1003 is never raised)
    assert api.ok("workers.register", {"worker": "w1", "timeout": 50, "queues": ["q3"]}) == {}
    after = workers(api)["w1"]
    assert after["register_timeout"] == 50
    assert after["queues"] == [{"id": "q3"}]
    for cleared in ("task", "queue", "project", "last_report_time"):
        assert cleared not in after
    t_before = datetime.fromisoformat(before["register_time"])
    t_after = datetime.fromisoformat(after["register_time"])
    assert 5 <= (t_after - t_before).total_seconds() < 8  # the clock also runs at real speed
    assert after["last_activity_time"] == after["register_time"]


def test_reregister_without_queues_clears_them(api: JsonApi) -> None:
    api.ok("workers.register", {"worker": "w1", "queues": ["q1"]})
    api.ok("workers.register", {"worker": "w1"})
    assert workers(api)["w1"]["queues"] == []


def test_the_worker_expires_timeout_seconds_after_register(api: JsonApi, hub_server: ServerHandle) -> None:
    api.ok("workers.register", {"worker": "w1", "timeout": 60})
    hub_server.advance_clock(55)  # a margin of seconds: the clock also runs at real speed
    assert worker_ids(api, last_seen=0) == ["w1"]
    hub_server.advance_clock(6)
    assert worker_ids(api, last_seen=0) == []


def test_reregister_rearms_the_timeout_with_the_new_value(api: JsonApi, hub_server: ServerHandle) -> None:
    api.ok("workers.register", {"worker": "w1", "timeout": 10})
    hub_server.advance_clock(8)
    api.ok("workers.register", {"worker": "w1", "timeout": 20})
    hub_server.advance_clock(15)  # 23 s after the first register, 15 after the second
    assert worker_ids(api, last_seen=0) == ["w1"]
    hub_server.advance_clock(6)
    assert worker_ids(api, last_seen=0) == []


def test_reregister_after_expiry_continues_the_same_stats_history(
    api: JsonApi, hub_server: ServerHandle
) -> None:
    api.ok("workers.register", {"worker": "w1", "timeout": 10})
    report(api, "w1", ms(0), {"memory_used": 100})
    hub_server.advance_clock(11)
    assert worker_ids(api, last_seen=0) == []
    api.ok("workers.register", {"worker": "w1", "timeout": 10})
    report(api, "w1", ms(60), {"memory_used": 300})
    [w] = get_stats(api, "memory_used")
    assert w["metrics"][0]["dates"] == [ms(0), ms(60)]
    assert w["metrics"][0]["stats"][0]["values"] == [100.0, 300.0]


def test_register_time_is_the_server_clock(api: JsonApi, hub_server: ServerHandle) -> None:
    api.ok("workers.register", {"worker": "w1"})
    first = datetime.fromisoformat(workers(api)["w1"]["register_time"])
    hub_server.advance_clock(120)
    api.ok("workers.register", {"worker": "w2"})
    second = datetime.fromisoformat(workers(api)["w2"]["register_time"])
    assert 120 <= (second - first).total_seconds() < 121
