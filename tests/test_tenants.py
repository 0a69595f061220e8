"""Tenants: companies never see each other's workers or stats, in any endpoint (spec §0.5).

Within a company the registry is keyed by (company, user, worker id) and stats by (company, worker id): two
users reporting the same id are two registrations over one stats history, as upstream keys Redis and ES.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from workerhub.testing import ServerHandle, running_server

from .support import APIS, JsonApi, Reply

CREDENTIALS = ("alice:a-secret:acme:alice", "bob:b-secret:acme:bob", "eve:e-secret:globex:eve")
T0 = 1_700_000_000_000  # ms
RANGE = {"from_date": T0 // 1000 - 60, "to_date": T0 // 1000 + 600, "interval": 60}


@dataclass
class As:
    """Calls as one logged-in user."""

    api: JsonApi
    token: str

    def call(self, name: str, body: Any = None) -> Reply:
        return self.api.call(name, body or {}, headers={"Authorization": "Bearer " + self.token})

    def ok(self, name: str, body: Any = None) -> dict[str, Any]:
        reply = self.call(name, body)
        assert reply.ok, reply.meta
        return reply.data


@pytest.fixture(scope="module")
def tenant_server() -> Iterator[ServerHandle]:
    with running_server(max_api_version="2.4", auth=CREDENTIALS) as handle:
        yield handle


@pytest.fixture(params=list(APIS))
def users(request: pytest.FixtureRequest, tenant_server: ServerHandle) -> Iterator[dict[str, As]]:
    tenant_server.reset()
    with httpx.Client(base_url=tenant_server.url, timeout=10) as client:
        api = APIS[request.param](client)
        out = {}
        for entry in CREDENTIALS:
            key, secret = entry.split(":")[:2]
            basic = base64.b64encode(f"{key}:{secret}".encode()).decode()
            r = client.get("/auth.login", headers={"Authorization": "Basic " + basic})
            out[key] = As(api, r.json()["data"]["token"])
        yield out


def report(worker: str, seconds: int, cpu: float, task: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "worker": worker,
        "timestamp": T0 + seconds * 1000,
        "machine_stats": {"cpu_usage": [cpu], "memory_used": 1000 + cpu},
    }
    if task:
        body["task"] = task
    return body


def cpu_values(user: As, worker_ids: list[str] | None = None) -> dict[str, list[float]]:
    body = {**RANGE, "items": [{"key": "cpu_usage", "aggregation": "max"}]}
    if worker_ids is not None:
        body["worker_ids"] = worker_ids
    out = {}
    for w in user.ok("workers.get_stats", body)["workers"]:
        (metric,) = w["metrics"]
        out[w["worker"]] = metric["stats"][0]["values"]
    return out


def ids(user: As) -> list[tuple[str, str]]:
    return [(w["id"], w["user"]["id"]) for w in user.ok("workers.get_all", {"last_seen": 0})["workers"]]


def test_companies_are_isolated_in_every_endpoint(users: dict[str, As]) -> None:
    alice, eve = users["alice"], users["eve"]
    alice.ok("workers.register", {"worker": "w1", "queues": ["q"]})
    alice.ok("workers.status_report", report("w1", 0, 10, task="t1"))
    alice.ok("workers.status_report", report("w1", 70, 20, task="t1"))
    alice.ok("workers.status_report", report("w2", 140, 30))
    alice_stats = cpu_values(alice)
    alice_keys = alice.ok("workers.get_metric_keys")
    alice_activity = alice.ok("workers.get_activity_report", RANGE)
    assert alice_stats == {"w1": [10.0, 20.0], "w2": [30.0]}
    assert sum(alice_activity["total"]["counts"]) > 0

    # globex sees nothing of acme, whichever way it asks.
    assert ids(eve) == []
    assert eve.call("workers.get_metric_keys").code == (400, 1005)
    assert eve.call("workers.get_metric_keys", {"worker_ids": ["w1", "w2"]}).code == (400, 1005)
    assert cpu_values(eve) == {}
    assert cpu_values(eve, ["w1", "w2"]) == {}
    assert eve.ok("workers.get_activity_report", RANGE) == {
        "total": {"dates": [], "counts": []},
        "active": {"dates": [], "counts": []},
    }
    assert eve.call("workers.unregister", {"worker": "w1"}).code == (400, 1004)

    # The same worker id in globex is globex's own worker with its own stats.
    eve.ok("workers.register", {"worker": "w1"})
    eve.ok("workers.status_report", report("w1", 0, 99, task="t9"))
    assert ids(eve) == [("w1", "eve")]
    assert cpu_values(eve) == {"w1": [99.0]}
    assert [c["name"] for c in eve.ok("workers.get_metric_keys")["categories"]] == ["cpu", "memory"]
    eve.ok("workers.unregister", {"worker": "w1"})

    # ... and acme is untouched by all of it.
    assert ids(alice) == [("w1", "alice"), ("w2", "alice")]
    assert cpu_values(alice) == alice_stats
    assert alice.ok("workers.get_metric_keys") == alice_keys
    assert alice.ok("workers.get_activity_report", RANGE) == alice_activity
    assert [w["company"]["id"] for w in alice.ok("workers.get_all")["workers"]] == ["acme", "acme"]


def test_users_of_a_company_share_the_list_and_stats_but_not_registrations(users: dict[str, As]) -> None:
    alice, bob = users["alice"], users["bob"]
    alice.ok("workers.register", {"worker": "w1"})
    alice.ok("workers.status_report", report("w1", 0, 10))
    # get_all lists every user's workers of the company.
    assert ids(bob) == [("w1", "alice")]
    # Registrations are per user: bob cannot unregister alice's worker...
    assert bob.call("workers.unregister", {"worker": "w1"}).code == (400, 1004)
    # ... and bob reporting the same id is a second registration over the same stats history.
    bob.ok("workers.status_report", report("w1", 5, 30))
    assert ids(alice) == [("w1", "alice"), ("w1", "bob")]
    assert cpu_values(alice) == cpu_values(bob) == {"w1": [30.0]}  # one bucket, max of both users' samples
    bob.ok("workers.unregister", {"worker": "w1"})
    assert ids(bob) == [("w1", "alice")]
