"""The path version picks the dialect, in one place (api-versions decisions 1-2): unversioned calls count
as ``max_api_version`` (2.34 by default), versions above it are served as it, ``--max-api-version 2.4``
makes the seed's server; settings chosen explicitly win over the dialect's default."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import pytest

from workerhub.cli import _parser
from workerhub.client import HttpClient, StatsReplyV232, StreamClient
from workerhub.config import Settings, SettingsError
from workerhub.testing import ServerHandle, running_server

from .dialect_support import head_server  # noqa: F401 (a fixture)

T = 1_700_000_000


@pytest.fixture
def head(head_server: ServerHandle) -> ServerHandle:  # noqa: F811
    head_server.reset()
    return head_server


def test_v3_unversioned_calls_are_the_maximum_version(head: ServerHandle) -> None:
    with HttpClient(head.url) as client:
        client.call("workers.register", {"worker": "w"}).unwrap()
        reply = client.call("workers.get_all", {"last_seen": 0})
        assert reply.meta["endpoint"] == {
            "name": "workers.get_all",
            "requested_version": "2.34",
            "actual_version": "2.4",
        }
        (w,) = reply.unwrap()["workers"]
        assert (w["tags"], w["system_tags"]) == ([], [])  # today's worker object
        assert client.call("workers.unregister", {"worker": "nobody"}).ok


def test_the_stream_picks_the_dialect_from_its_call_name(head: ServerHandle) -> None:
    assert head.stream_url is not None
    with StreamClient(head.stream_url) as client:
        assert client.call("workers.unregister", {"worker": "nobody"}).ok
        old = client.call("v2.23/workers.unregister", {"worker": "nobody"})
        assert old.code == (400, 1004) and old.meta["endpoint"]["requested_version"] == "2.23"


def test_the_client_types_the_2_32_stats_reply(head: ServerHandle) -> None:
    with HttpClient(head.url, version="2.34", codec="msgpack") as client:
        report = {"worker": "w", "timestamp": T * 1000, "machine_stats": {"gpu_usage": [10.0, 30.0]}}
        client.call("workers.status_report", report).unwrap()
        query = {"from_date": T, "to_date": T + 80, "interval": 40, "items": [{"key": "gpu_usage"}]}
        reply = client.call("workers.get_stats", {**query, "split_by_resource": True})
        data = cast(StatsReplyV232, reply.unwrap())
        (stat,) = data["workers"][0]["metrics"][0]["stats"]
        assert stat["dates"] == [T * 1000, (T + 40) * 1000] and stat["values"] == [20.0, 0.0]
        assert [(s["name"], s["values"]) for s in stat["resource_series"]] == [
            ("0", [10.0, 0.0]),
            ("1", [30.0, 0.0]),
        ]


@pytest.fixture(scope="module")
def seed() -> Iterator[ServerHandle]:
    with running_server(max_api_version="2.4") as handle:
        yield handle


@pytest.mark.parametrize("path", ["", "v2.4/", "v2.34/", "v3.0/"])
def test_max_api_version_2_4_is_the_seed_server(seed: ServerHandle, path: str) -> None:
    seed.reset()
    with HttpClient(seed.url) as client:
        assert client.call(path + "workers.unregister", {"worker": "nobody"}).code == (400, 1004)
        assert client.call(path + "workers.register", {"worker": "w", "timeout": 0}).code == (400, 1002)
        client.call(path + "workers.register", {"worker": "w"}).unwrap()
        (w,) = client.call(path + "workers.get_all", {"last_seen": 0}).unwrap()["workers"]
        assert "tags" not in w and "system_tags" not in w
        query = {"from_date": T, "to_date": T + 80, "interval": 40, "items": [{"key": "nope"}]}
        assert client.call(path + "workers.get_stats", query).unwrap() == {"workers": []}
        requested = client.call(path + "debug.ping").meta["endpoint"]["requested_version"]
        assert requested == (path[1:-1] if path else "2.4")


@pytest.mark.parametrize(
    ("setting", "version", "code"), [(False, "v2.34/", (400, 1004)), (True, "v2.4/", (200, 0))]
)
def test_an_explicit_auto_unregister_wins_over_the_dialect(
    setting: bool, version: str, code: tuple[int, int]
) -> None:
    with running_server(auto_unregister=setting) as server, HttpClient(server.url) as client:
        assert client.call(version + "workers.unregister", {"worker": "nobody"}).code == code


def test_fix_quirks_matches_patterns_against_the_whole_id() -> None:
    with running_server(fix_quirks=True) as server, HttpClient(server.url) as client:
        for w in ("a_b", "b"):
            client.call("workers.register", {"worker": w}).unwrap()
        listed = client.call("workers.get_all", {"last_seen": 0, "worker_pattern": "b"}).unwrap()["workers"]
        assert [w["id"] for w in listed] == ["b"]


@pytest.mark.parametrize("value", ["2.3", "2", "x.y", "2.4.1", ""])
def test_max_api_version_must_be_a_version_from_2_4(value: str) -> None:
    with pytest.raises(SettingsError, match="max_api_version"):
        Settings.from_mapping({"max_api_version": value})


def test_the_flags() -> None:
    args: Any = _parser().parse_args(["serve", "--max-api-version", "2.20", "--no-auto-unregister"])
    assert (args.max_api_version, args.auto_unregister) == ("2.20", False)
    assert _parser().parse_args(["serve"]).auto_unregister is None  # unset: the dialect decides
    assert Settings.load(env={"WORKERHUB_MAX_API_VERSION": "2.31"}).max_api_version == "2.31"
