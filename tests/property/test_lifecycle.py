"""The worker lifecycle as a state machine: register / status_report / time passes / unregister, on a model.

The real hub runs on trio in a background thread with a :class:`trio.testing.MockClock` that only moves
when a rule jumps it, so timeouts are tested exactly (to the quarter second, on their boundary too) and
without sleeping. After every step the machine compares ``get_all`` for each company and several
``last_seen`` values with the model, field by field, and checks that the stats of every worker ever
reported, registered or not, still answer get_metric_keys and get_stats (stats outlive registration).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
import trio
import trio.testing
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from workerhub.actors import Hub, open_hub
from workerhub.clock import Clock
from workerhub.config import Settings
from workerhub.errors import (
    InvalidWorkerId,
    WorkerNotRegistered,
    WorkerRegistrationFailed,
    WorkerStatsNotFound,
)
from workerhub.messages import Identity, RegisterRequest, StatsItem, StatsQuery, StatusReport
from workerhub.stats import flatten_machine_stats

from . import reference as ref
from .strategies import machine_stats

T = TypeVar("T")

WALL_START = 1_700_000_000.0
"""The hub's wall clock at start (epoch seconds); model time ``t`` is seconds since then."""

IDENTITIES = (Identity("c1", "u1"), Identity("c1", "u2"), Identity("c2", "u1"))
"""Two users of one company (same worker id = two registrations, one stats history) and another company."""

COMPANIES = ("c1", "c2")
WORKERS = ("w1", "w2", "w3")
IPS = ("10.0.0.1", "192.168.1.7")
QUEUE_IDS = ("q1", "q2", "q3")
LAST_SEEN = (None, 0, 3600, 1, 30, -5)

# quarter seconds are exact in binary floating point, so model and hub agree on every boundary
durations = st.one_of(
    st.sampled_from([0.25, 1, 2, 29.75, 30, 30.25, 599.75, 600, 3600, 86_400]),
    st.integers(1, 4 * 700).map(lambda q: q / 4),
)


class HubThread:
    """A hub on a MockClock in a background trio thread, called from synchronous test code."""

    def __init__(self, hub_settings: Settings) -> None:
        ready = threading.Event()
        self._box: dict[str, Any] = {}

        async def main() -> None:
            stop = trio.Event()
            self._box["stop"] = stop
            self._box["token"] = trio.lowlevel.current_trio_token()
            try:
                async with open_hub(hub_settings, clock=Clock(wall_at_start=WALL_START)) as hub:
                    self._box["hub"] = hub
                    ready.set()
                    await stop.wait()
            finally:
                ready.set()

        def thread_main() -> None:
            try:
                trio.run(main, clock=trio.testing.MockClock())
            except BaseException as exc:  # re-raised by close()
                self._box["error"] = exc

        self._thread = threading.Thread(target=thread_main, name="property-hub", daemon=True)
        self._thread.start()
        ready.wait()
        if "hub" not in self._box:
            self._thread.join()
            raise RuntimeError("the hub did not start") from self._box.get("error")
        self.hub: Hub = self._box["hub"]
        self._token = self._box["token"]

    def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Await ``fn(*args, **kwargs)`` on the hub's trio thread."""
        return trio.from_thread.run(lambda: fn(*args, **kwargs), trio_token=self._token)

    def run_sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return trio.from_thread.run_sync(lambda: fn(*args, **kwargs), trio_token=self._token)

    def close(self) -> None:
        trio.from_thread.run_sync(self._box["stop"].set, trio_token=self._token)
        self._thread.join()
        if "error" in self._box:
            raise self._box["error"]


def iso(t: float) -> str:
    return datetime.fromtimestamp(WALL_START + t, UTC).replace(tzinfo=None).isoformat()


@dataclass
class Entry:
    """The model of one registration, times in model seconds."""

    identity: Identity
    id: str
    ip: str
    timeout: int
    registered: float
    active: float
    reported: float | None = None
    queues: list[str] = field(default_factory=list)
    queue: str | None = None
    task: str | None = None
    task_since: float | None = None

    @property
    def deadline(self) -> float:
        return self.active + self.timeout

    def wire(self, now: float) -> dict[str, Any]:
        ident = self.identity
        out: dict[str, Any] = {
            "id": self.id,
            "key": f"worker_{ident.company}_{ident.user}_{self.id}",
            "user": {"id": ident.user, "name": ident.user},
            "company": {"id": ident.company, "name": ident.company},
            "ip": self.ip,
            "register_time": iso(self.registered),
            "register_timeout": self.timeout,
            "last_activity_time": iso(self.active),
        }
        if self.reported is not None:
            out["last_report_time"] = iso(self.reported)
        if self.task is not None:
            assert self.task_since is not None
            out["task"] = {"id": self.task, "running_time": int((now - self.task_since) * 1000)}
        out["queues"] = [{"id": q} for q in self.queues]
        if self.queue is not None and self.queue in self.queues:
            out["queue"] = {"id": self.queue}
        return out


class Lifecycle(RuleBasedStateMachine):
    """Registrations and their expiry against a model; subclasses change the settings."""

    hub_settings = Settings(raw_retention=1e9)  # retention is not modelled: keep every record

    def __init__(self) -> None:
        super().__init__()
        self.server = HubThread(self.hub_settings)
        self.now = 0.0
        self.entries: dict[tuple[str, str, str], Entry] = {}  # (company, user, id)
        self.records: dict[str, list[dict[str, Any]]] = {c: [] for c in COMPANIES}

    def teardown(self) -> None:
        self.server.close()

    # --- model helpers ------------------------------------------------------------------------------------

    def live(self, identity: Identity, worker: str) -> Entry | None:
        entry = self.entries.get((identity.company, identity.user, worker))
        if entry is not None and self.now >= entry.deadline:
            del self.entries[(identity.company, identity.user, worker)]  # the TTL lapsed
            return None
        return entry

    def expire(self) -> None:
        for key, entry in list(self.entries.items()):
            if self.now >= entry.deadline:
                del self.entries[key]

    # --- rules --------------------------------------------------------------------------------------------

    @rule(
        identity=st.sampled_from(IDENTITIES),
        worker=st.sampled_from(WORKERS),
        timeout=st.sampled_from([None, -5, 0, 1, 2, 30, 600]),
        queues=st.lists(st.sampled_from(QUEUE_IDS), max_size=4),
        ip=st.sampled_from(IPS),
    )
    def register(self, identity: Identity, worker: str, timeout: int | None, queues: list[str], ip: str) -> None:
        req = RegisterRequest(worker=worker, timeout=timeout, queues=tuple(queues))
        if timeout is None or timeout <= 0:
            with pytest.raises(WorkerRegistrationFailed):
                self.server.run(self.server.hub.register, req, identity=identity, ip=ip)
            return
        self.server.run(self.server.hub.register, req, identity=identity, ip=ip)
        self.entries[(identity.company, identity.user, worker)] = Entry(
            identity, worker, ip, timeout, self.now, self.now, queues=list(dict.fromkeys(queues))
        )

    @rule(
        identity=st.sampled_from(IDENTITIES),
        worker=st.sampled_from(WORKERS),
        task=st.sampled_from([None, "", "t1", "t2"]),
        queue=st.sampled_from([None, "q1", "q2"]),
        queues=st.sampled_from([None, (), ("q1",), ("q2", "q1", "q2")]),
        stats=machine_stats(),
        timestamp=st.integers(0, 10_000).map(lambda s: 1_700_000_000_000 + s * 1000),
        ip=st.sampled_from(IPS),
    )
    def status_report(
        self,
        identity: Identity,
        worker: str,
        task: str | None,
        queue: str | None,
        queues: tuple[str, ...] | None,
        stats: dict[str, Any] | None,
        timestamp: int,
        ip: str,
    ) -> None:
        report = StatusReport(
            worker=worker,
            timestamp=timestamp,
            task=task,
            queue=queue,
            queues=queues,
            samples=flatten_machine_stats(stats),
        )
        entry = self.live(identity, worker)
        if entry is None and not self.hub_settings.auto_register:
            with pytest.raises(InvalidWorkerId):
                self.server.run(self.server.hub.status_report, report, identity=identity, ip=ip)
            return
        self.server.run(self.server.hub.status_report, report, identity=identity, ip=ip)
        if entry is None:  # auto-registered with the default timeout and no queues
            entry = Entry(identity, worker, ip, self.hub_settings.default_timeout, self.now, self.now)
            self.entries[(identity.company, identity.user, worker)] = entry
        self.records[identity.company].extend(ref.make_records(worker, timestamp, task, stats))
        entry.ip = ip
        entry.active = entry.reported = self.now
        entry.queue = queue
        if queues:
            entry.queues = list(dict.fromkeys(queues))
        if task:
            if task != entry.task:
                entry.task, entry.task_since = task, self.now
        else:
            entry.task = entry.task_since = None

    @rule(identity=st.sampled_from(IDENTITIES), worker=st.sampled_from(WORKERS), ip=st.sampled_from(IPS))
    def unregister(self, identity: Identity, worker: str, ip: str) -> None:
        entry = self.live(identity, worker)
        if entry is None and not self.hub_settings.auto_unregister:
            with pytest.raises(WorkerNotRegistered):
                self.server.run(self.server.hub.unregister, worker, identity=identity, ip=ip)
            return
        self.server.run(self.server.hub.unregister, worker, identity=identity, ip=ip)
        self.entries.pop((identity.company, identity.user, worker), None)

    @rule(seconds=durations)
    def advance(self, seconds: float) -> None:
        self.server.run_sync(self.server.hub.advance_clock, seconds)
        self.now += seconds
        self.expire()

    @precondition(lambda self: bool(self.entries))
    @rule(data=st.data(), before=st.sampled_from([0.0, 0.25]))
    def advance_to_a_deadline(self, data: st.DataObject, before: float) -> None:
        """Jump exactly to a worker's expiry (it is gone) or a quarter second before it (it is not)."""
        entry = data.draw(st.sampled_from(sorted(self.entries.values(), key=lambda e: e.deadline)))
        seconds = entry.deadline - self.now - before
        if seconds > 0:
            self.advance(seconds)

    # --- invariants ---------------------------------------------------------------------------------------

    @invariant()
    def get_all_matches_the_model(self) -> None:
        hub = self.server.hub

        def everything() -> dict[tuple[str, int | None], list[dict[str, Any]]]:
            # one hop into the trio thread: get_all lists every user's workers of the company
            return {
                (c, ls): hub.get_all(ls, identity=Identity(c, "anyone"))
                for c in COMPANIES + ("nobody",)
                for ls in LAST_SEEN
            }

        answers = self.server.run_sync(everything)
        for company in COMPANIES + ("nobody",):
            for last_seen in LAST_SEEN:
                actual = answers[(company, last_seen)]
                threshold = None if not last_seen else self.now - max(1, last_seen)
                expected = [
                    e.wire(self.now)
                    for e in self.entries.values()
                    if e.identity.company == company and (threshold is None or e.active >= threshold)
                ]
                expected.sort(key=lambda w: (w["id"], w["user"]["id"]))
                assert actual == expected, (company, last_seen)

    @invariant()
    def stats_outlive_registration(self) -> None:
        hub = self.server.hub
        query = StatsQuery(
            from_date=0,
            to_date=10_000_000_000,
            interval=600,
            items=tuple(StatsItem(k, a) for k in ref.LIST_FIELDS + ref.SCALAR_FIELDS for a in ("min", "max")),
        )
        for company in COMPANIES:
            who = Identity(company, "anyone")
            records = self.records[company]
            expected = ref.get_metric_keys(records)
            try:
                actual = self.server.run_sync(hub.get_metric_keys, (), identity=who)
            except WorkerStatsNotFound:
                actual = None
            assert actual == expected
            stats = self.server.run(hub.get_stats, query, identity=who)
            items = [(i.key, i.aggregation) for i in query.items]
            assert stats == ref.get_stats(records, query.from_date, query.to_date, query.interval, items)

    @invariant()
    def registry_and_histories_are_well_formed(self) -> None:
        self.server.run_sync(self.server.hub._check)


Lifecycle.TestCase.settings = settings(stateful_step_count=25, max_examples=max(10, settings().max_examples // 3))
TestLifecycle = Lifecycle.TestCase


class StrictLifecycle(Lifecycle):
    """auto_register off (status_report of an unknown worker: 400/1001), auto_unregister on, short default."""

    hub_settings = Settings(auto_register=False, auto_unregister=True, default_timeout=30, raw_retention=1e9)


StrictLifecycle.TestCase.settings = settings(stateful_step_count=25, max_examples=max(10, settings().max_examples // 5))
TestStrictLifecycle = StrictLifecycle.TestCase
