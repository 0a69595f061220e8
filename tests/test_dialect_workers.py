"""API 2.5-2.34 on the registry endpoints: tags, system_tags, get_all filters, get_count, register
``resources`` and timeout, unregister (api-versions checklist V1-V28, V47-V49; V18/V19/V24 are not
emulated, decisions 5-6), against a server at the default max_api_version 2.34; every call names its
path version."""

from __future__ import annotations

from typing import Any

import pytest

from .dialect_support import ServerHandle, cleared, head_server  # noqa: F401 (head_server: a fixture)
from .support import JsonApi, ms

HEAD = "v2.34/"


@pytest.fixture
def hub_server(head_server: ServerHandle) -> ServerHandle:  # noqa: F811
    """Overrides conftest's: the ``api`` fixture talks to the 2.34 server."""
    return cleared(head_server)


def ok(api: JsonApi, name: str, body: dict[str, Any] | None = None, version: str = HEAD) -> dict[str, Any]:
    return api.ok(version + name, body or {})


def ids(api: JsonApi, version: str = HEAD, **body: Any) -> list[str]:
    return [w["id"] for w in ok(api, "workers.get_all", {"last_seen": 0, **body}, version)["workers"]]


def entry(api: JsonApi, worker: str) -> dict[str, Any]:
    (w,) = [w for w in ok(api, "workers.get_all", {"last_seen": 0})["workers"] if w["id"] == worker]
    return w


def setup_tags(api: JsonApi, **workers: tuple[list[str], list[str]]) -> None:
    for worker, (tags, system_tags) in workers.items():
        ok(api, "workers.register", {"worker": worker, "tags": tags, "system_tags": system_tags})


# --- V1-V3: versions ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["v2.4/", "v2.20/", "v2.30/", HEAD, "v2.99/"])
def test_v1_new_request_fields_are_honoured_at_every_version(api: JsonApi, version: str) -> None:
    setup_tags(api, A=(["a"], []), B=(["b"], []))
    assert ids(api, version, tags=["a"]) == ["A"]
    assert ids(api, version, worker_pattern="B") == ["B"]


def test_v2_get_count_exists_from_version_1_0(api: JsonApi) -> None:
    setup_tags(api, A=(["a"], []))
    reply = api.call("v2.4/workers.get_count", {})
    assert reply.ok and reply.data == {"count": 1}
    assert reply.meta["endpoint"] == {
        "name": "workers.get_count",
        "requested_version": "2.4",
        "actual_version": "1.0",
    }
    assert api.call("v2.1/workers.get_count", {}).data == {"count": 1}
    missing = api.call("v2.1/workers.get_all", {})
    assert missing.code == (404, 0) and "workers.get_all and version 2.1" in missing.meta["result_msg"]


def test_v3_versions_above_the_maximum_are_served_as_it(api: JsonApi) -> None:
    reply = api.call("v2.99/workers.unregister", {"worker": "never-registered"})
    assert reply.ok  # served as 2.34: unknown worker = 200
    assert reply.meta["endpoint"]["requested_version"] == "2.99"


# --- V4-V10: tags, system_tags, timeout, resources ----------------------------------------------------------


def test_v4_register_stores_tags_and_system_tags(api: JsonApi) -> None:
    ok(api, "workers.register", {"worker": "W", "tags": ["a", "b"], "system_tags": ["s"]})
    w = entry(api, "W")
    assert (w["tags"], w["system_tags"]) == (["a", "b"], ["s"])


def test_v5_tags_are_empty_lists_by_default_at_head(api: JsonApi) -> None:
    ok(api, "workers.register", {"worker": "W"})
    w = entry(api, "W")
    assert (w["tags"], w["system_tags"]) == ([], [])
    # below 2.32 the worker object keeps the 2.4 shape: tag fields only once set
    (old,) = ok(api, "workers.get_all", {"last_seen": 0}, "v2.23/")["workers"]
    assert "tags" not in old and "system_tags" not in old


@pytest.mark.parametrize("tags", [{}, {"tags": None, "system_tags": None}])
def test_v6_a_report_without_tags_clears_them(api: JsonApi, tags: dict[str, Any]) -> None:
    ok(api, "workers.register", {"worker": "W", "tags": ["a", "b"], "system_tags": ["s"]})
    ok(api, "workers.status_report", {"worker": "W", "timestamp": ms(), **tags})
    w = entry(api, "W")
    assert (w["tags"], w["system_tags"]) == ([], [])


@pytest.mark.parametrize("version", ["v2.23/", HEAD])
def test_v7_a_report_replaces_the_tags(api: JsonApi, version: str) -> None:
    ok(api, "workers.register", {"worker": "W", "tags": ["a"], "system_tags": ["s"]}, version)
    ok(api, "workers.status_report", {"worker": "W", "timestamp": ms(), "tags": ["x"]}, version)
    w = entry(api, "W")
    assert (w["tags"], w["system_tags"]) == (["x"], [])


@pytest.mark.parametrize("field", ["tags", "system_tags"])
@pytest.mark.parametrize("value", ["a", [1], {"a": 1}, [None]])
@pytest.mark.parametrize("name", ["workers.register", "workers.status_report"])
def test_v8_tags_must_be_lists_of_strings(api: JsonApi, field: str, value: Any, name: str) -> None:
    reply = api.call(HEAD + name, {"worker": "W", "timestamp": ms(), field: value})
    assert reply.code == (400, 12) and field in reply.meta["result_msg"]
    assert ids(api) == []


@pytest.mark.parametrize("timeout", [{}, {"timeout": 0}, {"timeout": None}])
def test_v9_timeout_zero_or_null_is_the_default_at_head(api: JsonApi, timeout: dict[str, Any]) -> None:
    ok(api, "workers.register", {"worker": "W", **timeout})
    assert entry(api, "W")["register_timeout"] == 600


def test_v9_negative_timeout_is_refused_and_zero_too_below_2_32(api: JsonApi) -> None:
    assert api.call(HEAD + "workers.register", {"worker": "W", "timeout": -1}).code == (400, 1002)
    assert api.call("v2.31/workers.register", {"worker": "W", "timeout": 0}).code == (400, 1002)
    assert ids(api) == []


def test_v10_resources_are_checked_and_not_kept(api: JsonApi) -> None:
    ok(api, "workers.register", {"worker": "W", "resources": {"cpu_usage": 1.5, "gpu_usage": 2}})
    assert "resources" not in entry(api, "W")
    for bad, field in [
        ({"cpu_usage": "x"}, "resources.cpu_usage"),
        ([1], "resources"),
        ({"gpu_usage": True}, "resources.gpu_usage"),
    ]:
        reply = api.call(HEAD + "workers.register", {"worker": "V", "resources": bad})
        assert reply.code == (400, 12) and field in reply.meta["result_msg"]
    assert ids(api) == ["W"]


# --- V11-V17: tag filters -----------------------------------------------------------------------------------


def test_v11_includes_are_ored_within_a_field(api: JsonApi) -> None:
    setup_tags(api, A=(["a"], []), B=(["b"], []), C=([], []))
    assert ids(api, tags=["a", "b"]) == ["A", "B"]


def test_v12_exclusion_starts_from_every_live_worker(api: JsonApi) -> None:
    setup_tags(api, A=(["a"], []), B=(["b"], []), C=([], []))
    assert ids(api, tags=["-a"]) == ["B", "C"]


def test_v13_include_and_exclude_in_one_field(api: JsonApi) -> None:
    setup_tags(api, A=(["a"], []), D=(["a", "b"], []))
    assert ids(api, tags=["a", "-b"]) == ["A"]


def test_v14_v15_fields_are_anded(api: JsonApi) -> None:
    setup_tags(api, A=(["a"], ["s"]), E=(["a"], []))
    assert ids(api, tags=["a"], system_tags=["s"]) == ["A"]
    assert ids(api, tags=["a"], system_tags=["-s"]) == ["E"]


def test_v16_no_operators(api: JsonApi) -> None:
    setup_tags(api, A=(["a"], []), B=(["__$all"], []), C=(["c"], []))
    assert ids(api, tags=["__$all", "a"]) == ["A", "B"]


def test_v17_tag_filters_combine_with_last_seen(api: JsonApi, hub_server: ServerHandle) -> None:
    setup_tags(api, A=(["a"], []))
    hub_server.advance_clock(120)
    setup_tags(api, B=(["a"], []))
    assert ids(api, tags=["a"], last_seen=60) == ["B"]
    assert ids(api, tags=["a"]) == ["A", "B"]


@pytest.mark.parametrize("body", [{"tags": [""]}, {"system_tags": ["-"]}, {"tags": ["a", ""]}])
@pytest.mark.parametrize("name", ["workers.get_all", "workers.get_count"])
def test_v20_an_empty_tag_is_400_not_500(api: JsonApi, body: dict[str, Any], name: str) -> None:
    reply = api.call(HEAD + name, body)
    assert reply.code == (400, 12) and next(iter(body)) in reply.meta["result_msg"]


def test_null_filters_select_everything(api: JsonApi) -> None:
    setup_tags(api, A=(["a"], []), B=([], []))
    assert ids(api, tags=None, system_tags=None, worker_pattern=None) == ["A", "B"]
    assert ids(api, tags=[], system_tags=[]) == ["A", "B"]


# --- V21-V25: worker_pattern ---------------------------------------------------------------------------------


def register_all(api: JsonApi, *workers: str) -> None:
    for w in workers:
        ok(api, "workers.register", {"worker": w})


def test_v21_prefix_glob(api: JsonApi) -> None:
    register_all(api, "gpu-1", "gpu-22", "my-gpu-1", "my_gpu-1")
    assert ids(api, worker_pattern="gpu-*") == ["gpu-1", "gpu-22", "my_gpu-1"]  # my_gpu-1: V23's quirk


def test_v22_question_mark_is_one_character_case_sensitive(api: JsonApi) -> None:
    register_all(api, "w", "w1", "w12", "W1")
    assert ids(api, worker_pattern="w?") == ["w1"]


def test_v23_suffix_after_an_underscore(api: JsonApi) -> None:
    register_all(api, "a_b", "ab", "b")
    assert ids(api, worker_pattern="b") == ["a_b", "b"]


def test_classes_and_escapes(api: JsonApi) -> None:
    register_all(api, "w1", "w2", "w3", "wx", "w*", "a.c", "abc")
    assert ids(api, worker_pattern="w[1-2x]") == ["w1", "w2", "wx"]
    assert ids(api, worker_pattern="w[^1-2x]") == ["w*", "w3"]
    assert ids(api, worker_pattern="w\\*") == ["w*"]
    assert ids(api, worker_pattern="a.c") == ["a.c"]  # a glob, not a regex


@pytest.mark.parametrize("pattern", ["w[1", "w\\", "[]", "[^]"])
@pytest.mark.parametrize("name", ["workers.get_all", "workers.get_count"])
def test_malformed_patterns_are_400(api: JsonApi, pattern: str, name: str) -> None:
    reply = api.call(HEAD + name, {"worker_pattern": pattern})
    assert reply.code == (400, 12) and "worker_pattern" in reply.meta["result_msg"]


def test_v25_empty_or_absent_pattern_does_not_filter(api: JsonApi) -> None:
    register_all(api, "x", "y")
    assert ids(api, worker_pattern="") == ids(api) == ["x", "y"]


def test_pattern_and_tags_together(api: JsonApi) -> None:
    setup_tags(api, gpu_1=(["a"], []), gpu_2=([], []), cpu_1=(["a"], []))
    assert ids(api, worker_pattern="gpu_*", tags=["a"]) == ["gpu_1"]
    assert ok(api, "workers.get_count", {"worker_pattern": "gpu_*", "tags": ["-a"]}) == {"count": 1}


# --- V26-V28: get_count -------------------------------------------------------------------------------------


def test_v26_v27_get_count_counts_live_workers_regardless_of_activity(
    api: JsonApi, hub_server: ServerHandle
) -> None:
    setup_tags(api, A=([], ["t"]), B=([], ["t"]), C=([], []))
    assert ok(api, "workers.get_count", {"system_tags": ["t"], "last_seen": 4}) == {"count": 2}
    hub_server.advance_clock(5)
    assert ok(api, "workers.get_count", {"system_tags": ["t"], "last_seen": 4}) == {"count": 0}
    assert ok(api, "workers.get_count", {"system_tags": ["t"]}) == {"count": 2}
    assert ok(api, "workers.get_count") == {"count": 3}


@pytest.mark.parametrize("last_seen", [30, -5])
def test_v28_get_count_agrees_with_get_all(api: JsonApi, hub_server: ServerHandle, last_seen: int) -> None:
    setup_tags(api, gpu_a=(["a"], []), gpu_b=(["a"], ["s"]), cpu=(["a"], []))
    hub_server.advance_clock(40)
    setup_tags(api, gpu_c=(["a"], []))
    body = {"tags": ["a"], "system_tags": ["-s"], "worker_pattern": "gpu*", "last_seen": last_seen}
    listed = ids(api, **body)
    assert listed == ["gpu_c"]  # a negative last_seen acts as a 1 s window
    assert ok(api, "workers.get_count", body) == {"count": len(listed)}


def test_get_count_validates_last_seen(api: JsonApi) -> None:
    reply = api.call(HEAD + "workers.get_count", {"last_seen": "soon"})
    assert reply.code == (400, 12) and "last_seen" in reply.meta["result_msg"]


# --- V47-V48: unregister, removed endpoints -----------------------------------------------------------------


def test_v47_unregister_of_an_unknown_worker(api: JsonApi) -> None:
    assert api.call(HEAD + "workers.unregister", {"worker": "never-registered"}).ok
    assert api.call("v2.31/workers.unregister", {"worker": "never-registered"}).code == (400, 1004)


@pytest.mark.parametrize("name", ["workers.get_runtime_properties", "workers.set_runtime_properties"])
@pytest.mark.parametrize("version", ["v2.4/", "v2.10/", HEAD])
def test_v48_runtime_properties_do_not_exist(api: JsonApi, name: str, version: str) -> None:
    reply = api.call(version + name, {"worker": "w"})
    assert reply.code == (404, 0)
    assert reply.meta["result_msg"] == f"Unable to find endpoint for name {name} and version {version[1:-1]}"


def test_v49_an_agent_report_clears_register_tags_and_keeps_reporting(api: JsonApi) -> None:
    ok(api, "workers.register", {"worker": "agent", "queues": ["q"], "tags": ["from-register"]})
    body = {
        "worker": "agent",
        "timestamp": ms(),
        "tags": None,
        "is_daemon": True,
        "machine_stats": {"cpu_usage": [1.0]},
    }
    ok(api, "workers.status_report", body)
    w = entry(api, "agent")
    assert (w["tags"], w["register_timeout"], w["queues"]) == ([], 600, [{"id": "q"}])


def test_v50_the_sdk_get_all_with_filters_and_method(api: JsonApi) -> None:
    setup_tags(api, A=(["a"], ["s"]), B=(["a"], []))
    body = {"last_seen": 3600, "tags": ["a"], "system_tags": ["s"], "method": "get"}
    assert ids(api, "v2.23/", **body) == ["A"]
