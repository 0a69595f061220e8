"""workers.get_all (spec §5): the last_seen filter (Q16), live entries only, the worker object."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from workerhub.testing import ServerHandle

from .support import JsonApi, ms, report, worker_ids, workers


def test_empty_registry_lists_no_workers(api: JsonApi) -> None:
    assert api.ok("workers.get_all", {}) == {"workers": []}


def test_default_last_seen_is_an_hour(api: JsonApi, hub_server: ServerHandle) -> None:
    api.ok("workers.register", {"worker": "old", "timeout": 10_000})
    hub_server.advance_clock(3599)
    assert worker_ids(api) == ["old"]  # body without last_seen
    hub_server.advance_clock(2)
    api.ok("workers.register", {"worker": "new", "timeout": 10_000})
    assert worker_ids(api) == ["new"]
    assert worker_ids(api, last_seen=3600) == ["new"]
    assert worker_ids(api, last_seen=0) == ["new", "old"]


@pytest.mark.parametrize("off", [0, None])
def test_last_seen_zero_or_null_turns_the_filter_off(
    api: JsonApi, hub_server: ServerHandle, off: object
) -> None:
    api.ok("workers.register", {"worker": "w1", "timeout": 100_000})
    hub_server.advance_clock(50_000)
    assert worker_ids(api, last_seen=off) == ["w1"]


def test_last_seen_counts_seconds_since_the_last_activity(api: JsonApi, hub_server: ServerHandle) -> None:
    api.ok("workers.register", {"worker": "w1"})
    api.ok("workers.register", {"worker": "w2"})
    hub_server.advance_clock(20)
    report(api, "w2", ms())  # activity = register or status_report
    hub_server.advance_clock(3)
    assert worker_ids(api, last_seen=10) == ["w2"]
    assert worker_ids(api, last_seen=30) == ["w1", "w2"]


def test_negative_last_seen_acts_as_one_second(api: JsonApi, hub_server: ServerHandle) -> None:  # quirk Q16
    # margins of whole seconds: the clock also runs at real speed, and a loaded CI machine stalls
    api.ok("workers.register", {"worker": "w1"})
    assert worker_ids(api, last_seen=-100) == ["w1"]
    hub_server.advance_clock(1.5)
    assert worker_ids(api, last_seen=-100) == []
    assert worker_ids(api, last_seen=10) == ["w1"]


def test_last_seen_none_string_is_a_validation_error(api: JsonApi) -> None:  # quirk Q16
    api.ok("workers.register", {"worker": "w1"})
    reply = api.call("workers.get_all", {"last_seen": "none"})
    assert reply.code == (400, 12)
    assert "last_seen" in reply.meta["result_msg"]


def test_last_seen_is_cast_with_int(api: JsonApi, hub_server: ServerHandle) -> None:
    api.ok("workers.register", {"worker": "w1"})
    hub_server.advance_clock(5)
    assert worker_ids(api, last_seen="10") == ["w1"]
    assert worker_ids(api, last_seen=4.9) == []  # int(4.9) = 4


def test_expired_workers_are_never_listed(api: JsonApi, hub_server: ServerHandle) -> None:
    api.ok("workers.register", {"worker": "w1", "timeout": 5})
    api.ok("workers.register", {"worker": "w2", "timeout": 50})
    hub_server.advance_clock(6)
    assert worker_ids(api, last_seen=0) == ["w2"]
    assert worker_ids(api, last_seen=-1) == []


def test_workers_are_sorted_by_id(api: JsonApi) -> None:
    for w in ["b", "c", "a", "B"]:
        api.ok("workers.register", {"worker": w})
    assert worker_ids(api, last_seen=0) == ["B", "a", "b", "c"]


def test_worker_object_shape(api: JsonApi) -> None:
    api.ok("workers.register", {"worker": "w1", "timeout": 77, "queues": ["q1"]})
    report(api, "w1", ms(), task="t1", queue="q1")
    w = workers(api)["w1"]
    assert set(w) == {
        "id", "key", "user", "company", "ip", "register_time", "register_timeout", "last_activity_time",
        "last_report_time", "task", "queues", "queue",
    }  # fmt: skip
    assert w["id"] == "w1" and w["register_timeout"] == 77
    assert set(w["user"]) == {"id", "name"} and set(w["company"]) == {"id", "name"}
    assert w["key"] == f"worker_{w['company']['id']}_{w['user']['id']}_w1"
    assert w["queues"] == [{"id": "q1"}] and w["queue"] == {"id": "q1"}
    assert set(w["task"]) == {"id", "running_time"} and isinstance(w["task"]["running_time"], int)


def _no_nulls(value: object) -> bool:
    if isinstance(value, dict):
        return all(v is not None and _no_nulls(v) for v in value.values())
    if isinstance(value, list):
        return all(_no_nulls(v) for v in value)
    return True


def test_null_fields_are_omitted(api: JsonApi) -> None:
    api.ok("workers.register", {"worker": "w1"})
    report(api, "w2", ms(), task=None, queue=None, queues=None)
    assert _no_nulls(api.ok("workers.get_all", {"last_seen": 0}))


def test_times_are_naive_utc_iso_strings(api: JsonApi) -> None:  # quirk Q24
    before = datetime.now(UTC).replace(tzinfo=None)
    report(api, "w1", ms())
    w = workers(api)["w1"]
    for field in ("register_time", "last_activity_time", "last_report_time"):
        text = w[field]
        assert isinstance(text, str) and not text.endswith("Z") and "+" not in text
        parsed = datetime.fromisoformat(text)
        assert parsed.tzinfo is None
        # the server's clock starts at the real time and only moves forward
        assert parsed >= before.replace(microsecond=0)


def test_queues_are_deduplicated(api: JsonApi) -> None:  # quirk Q11
    api.ok("workers.register", {"worker": "w1", "queues": ["q1", "q2", "q1"]})
    assert workers(api)["w1"]["queues"] == [{"id": "q1"}, {"id": "q2"}]
    report(api, "w1", ms(), queues=["q3", "q3"])
    assert workers(api)["w1"]["queues"] == [{"id": "q3"}]


def test_queue_appears_only_if_in_queues(api: JsonApi) -> None:  # quirk Q11
    report(api, "w1", ms(), queue="q9")
    assert "queue" not in workers(api)["w1"]
    report(api, "w1", ms(), queue="q9", queues=["q8", "q9"])
    assert workers(api)["w1"]["queue"] == {"id": "q9"}


def test_get_all_ignores_unknown_fields(api: JsonApi) -> None:
    api.ok("workers.register", {"worker": "w1"})
    assert worker_ids(api, last_seen=0, method="get", is_daemon=True) == ["w1"]
