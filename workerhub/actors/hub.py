"""The hub: the workers service in process: its mutations, its queries, and the write gate.

Where history lives (DESIGN "Stats outlive registration"): the hub owns one :class:`WorkerHistory` per
(company, worker id) in an archive; a registered worker's actor holds a reference to it and is its only
writer while registered. When the actor expires or unregisters, the history stays in the archive, so
get_stats / get_metric_keys / get_activity_report still see it until retention drops it, and
re-registering the same id continues the same history.

Mutations go through the worker's actor mailbox; queries read histories and actor state synchronously
(no await between reads), which trio's single thread makes consistent. The hub is built on the registry
and its admission limits (``registry.py``, which also owns what each mutation does to an actor, for the
live path and journal replay alike), persistence recovery (``recovery.py``: export, restore, replay) and
maintenance (``maintenance.py``: retention, reset, counts).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import trio

from ..clock import Clock
from ..config import Settings
from ..errors import (
    FieldsValueError,
    InvalidWorkerId,
    WorkerNotRegistered,
    WorkerRegistrationFailed,
    WorkerStatsNotFound,
)
from ..hubstate import MutationLog, NoLog
from ..messages import DEFAULT_IDENTITY, ActivityQuery, Identity, RegisterRequest, StatsQuery, StatusReport
from ..ops.metrics import Metrics
from ..ops.probes import Readiness
from ..stats import ActivityJob, StatsJob, metric_keys
from ..stats.grid import ActivityGridJob, StatsGridJob
from .gate import WriteGate
from .maintenance import Maintenance
from .recovery import Recovery
from .registry import _effect
from .worker import ActorGone, WorkerActor

Tagged = Callable[[str, "tuple[str, ...] | None", "tuple[str, ...] | None"], bool]
"""A get_all / get_count filter: ``match(worker_id, tags, system_tags)`` (built by workerhub.api.filters)."""

__all__ = ["Hub", "open_hub"]

UNTRACKABLE = "untrackable"


class Hub(Recovery, Maintenance):
    """The workers service, in process. Create it with :func:`open_hub`.

    Every method takes the caller's :class:`Identity` (default: the open-mode identity); companies never
    see each other's workers or stats.
    """

    def __init__(self, settings: Settings, clock: Clock, store: MutationLog, nursery: trio.Nursery) -> None:
        super().__init__(settings, clock, nursery)
        self.store = store
        self.writes = WriteGate()  # every mutation passes it; a snapshot closes it for a consistent cut
        self.metrics = Metrics(self)  # /metrics: request counters, and what the hub holds read at scrape time
        self.readiness = Readiness(self)  # /readyz; serve() marks the state loading while it reads the disk

    # --- mutations ---------------------------------------------------------------------------------------

    async def register(
        self, req: RegisterRequest, *, identity: Identity = DEFAULT_IDENTITY, ip: str = UNTRACKABLE
    ) -> None:
        """workers.register: create or completely replace the worker's registration (spec §1)."""
        if req.timeout is None or req.timeout <= 0:
            raise WorkerRegistrationFailed("invalid timeout", timeout=req.timeout, worker=req.worker)
        self._admit(identity, req.worker)
        async with self.writes:
            # One wall time for the journal and the apply, so a replay reproduces the same times.
            at = self.clock.wall()
            await self.store.append("register", identity, req, ip, at)
            await self._deliver("register", identity, req, ip, at)

    async def unregister(
        self,
        worker: str,
        *,
        identity: Identity = DEFAULT_IDENTITY,
        ip: str = UNTRACKABLE,
        missing_ok: bool | None = None,
    ) -> None:
        """workers.unregister: the worker leaves get_all now; its stats stay (spec §2).

        An unknown worker is 400/1004 unless ``missing_ok`` (default: the ``auto_unregister`` setting).
        """
        if missing_ok is None:
            missing_ok = bool(self.settings.auto_unregister)
        async with self.writes:
            actor = self._live(identity, worker)
            if actor is None:
                if missing_ok:
                    return
                raise WorkerNotRegistered(worker=worker)
            at = self.clock.wall()
            await self.store.append("unregister", identity, worker, ip, at)
            try:
                await actor.call(_effect("unregister", actor, worker, ip, at))
            except ActorGone:
                if not missing_ok:
                    raise WorkerNotRegistered(worker=worker) from None

    async def status_report(
        self, report: StatusReport, *, identity: Identity = DEFAULT_IDENTITY, ip: str = UNTRACKABLE
    ) -> None:
        """workers.status_report: record stats, update the registration, renew the timeout (spec §4)."""
        if not self.settings.auto_register and self._live(identity, report.worker) is None:
            raise InvalidWorkerId(worker=report.worker)
        self._admit(identity, report.worker, report)
        async with self.writes:
            self._check_series(identity, report)  # refused before the journal sees it
            at = self.clock.wall()
            await self.store.append("status_report", identity, report, ip, at)
            await self._deliver("status_report", identity, report, ip, at)

    async def _deliver(self, op: str, identity: Identity, payload: Any, ip: str, at: float) -> None:
        """Apply a journaled register or status_report to its worker's actor, in order with the worker's
        other mutations (its mailbox), looking the worker up again if its actor retired meanwhile."""
        while True:
            actor, spawned = self._target(op, identity, payload, ip, at, self.clock.monotonic())
            if actor is None:  # a status_report of an unknown worker, auto_register off
                raise InvalidWorkerId(worker=payload.worker)
            effect = _effect(op, actor, payload, ip, at)
            if spawned and op == "register":
                effect()  # its task has not started: nothing can be queued ahead of it
                return
            try:
                await actor.call(effect)
                return
            except ActorGone:
                continue

    # --- queries: synchronous reads of actor-owned state ---------------------------------------------------

    def get_all(
        self,
        last_seen: int | None = 3600,
        *,
        identity: Identity = DEFAULT_IDENTITY,
        match: Tagged | None = None,
        head: bool = False,
    ) -> list[dict[str, Any]]:
        """workers.get_all: live workers of the caller's company, every user, sorted by id (spec §5).

        ``last_seen`` (seconds): 0 or None lists all; otherwise workers active within
        ``max(1, last_seen)`` seconds (negative acts as 1, quirk Q16). ``match``: the tags/pattern filter
        (api.filters); ``head``: the API >= 2.32 worker object (tag lists always present).
        """
        now = self.clock.wall()
        out = [actor.state.to_wire(now, head) for actor in self._selected(identity, last_seen, match, now)]
        out.sort(key=lambda w: (w["id"], w["user"]["id"]))
        return out

    def count(
        self, last_seen: int | None = 0, *, identity: Identity = DEFAULT_IDENTITY, match: Tagged | None = None
    ) -> int:
        """workers.get_count: how many workers get_all would list (``last_seen`` 0: every live one)."""
        return sum(1 for _ in self._selected(identity, last_seen, match, self.clock.wall()))

    def _selected(
        self, identity: Identity, last_seen: int | None, match: Tagged | None, now: float
    ) -> Iterator[WorkerActor]:
        threshold = None if not last_seen else now - max(1, last_seen)
        for actor in self._live_actors(identity):
            st = actor.state
            if threshold is not None and st.last_activity_time < threshold:
                continue
            if match is None or match(st.id, st.tags, st.system_tags):
                yield actor

    def get_metric_keys(
        self, worker_ids: tuple[str, ...] = (), *, identity: Identity = DEFAULT_IDENTITY
    ) -> list[dict[str, Any]]:
        """workers.get_metric_keys over all retained history (spec §6); 400/1005 when there is none."""
        categories = metric_keys(self._histories(identity, worker_ids).values())
        if not categories:
            raise WorkerStatsNotFound(
                f"No statistic metrics found for the company {identity.company} and workers "
                f"{', '.join(worker_ids) if worker_ids else 'all'}"
            )
        return categories

    async def get_stats(self, query: StatsQuery, *, identity: Identity = DEFAULT_IDENTITY) -> list[dict[str, Any]]:
        """workers.get_stats: the ``workers`` list of interval aggregates (spec §7).

        Refused (400/16) above ``max_query_values``; evaluated in slices of workers, yielding to other
        tasks between slices, so a large answer never holds the loop for long (stats/jobs.py).
        """
        _check_range(query.from_date, query.to_date)
        job = StatsJob(
            self._histories(identity, query.worker_ids), query, max_values=self.settings.max_query_values
        )
        for _ in job.steps():
            await trio.lowlevel.checkpoint()
        return job.result()

    async def get_activity_report(
        self, query: ActivityQuery, *, identity: Identity = DEFAULT_IDENTITY
    ) -> dict[str, dict[str, list[int]]]:
        """workers.get_activity_report: distinct reporting / task-running workers per bucket (spec §8)."""
        _check_range(query.from_date, query.to_date)
        histories = self._histories(identity, ()).values()
        job = ActivityJob(histories, query, fixed=self.settings.fix_quirks)
        for _ in job.steps():
            await trio.lowlevel.checkpoint()
        return job.result()

    async def get_stats_grid(
        self, query: StatsQuery, *, identity: Identity = DEFAULT_IDENTITY
    ) -> list[dict[str, Any]]:
        """workers.get_stats at API >= 2.32: zero-filled epoch-aligned grid (api-versions §4.5); budgeted
        and evaluated in slices as :meth:`get_stats`."""
        _check_range(query.from_date, query.to_date)
        histories = self._histories(identity, query.worker_ids)
        job = StatsGridJob(histories, query, max_values=self.settings.max_query_values)
        for _ in job.steps():
            await trio.lowlevel.checkpoint()
        return job.result()

    async def get_activity_grid(
        self, query: ActivityQuery, *, identity: Identity = DEFAULT_IDENTITY
    ) -> dict[str, dict[str, list[int]]]:
        """workers.get_activity_report at API >= 2.32: zero-filled grid, 40 s floor (api-versions §4.6)."""
        _check_range(query.from_date, query.to_date)
        histories = list(self._histories(identity, ()).values())
        job = ActivityGridJob(histories, query, fixed=self.settings.fix_quirks)
        for _ in job.steps():
            await trio.lowlevel.checkpoint()
        return job.result()

    # --- persistence: the write gate (export, restore and replay: actors/recovery.py) ---------------------

    def writes_held(self) -> AbstractAsyncContextManager[None]:
        """Hold new mutations at the gate and wait for those in flight: the state is a consistent cut
        (every journaled mutation applied, none half-done) for the body of the block."""
        return self.writes.closed()


def _check_range(from_date: float, to_date: float) -> None:
    if from_date >= to_date:
        raise FieldsValueError("from_date must be less than to_date")


@asynccontextmanager
async def open_hub(
    settings: Settings | None = None, *, clock: Clock | None = None, store: MutationLog | None = None
) -> AsyncIterator[Hub]:
    """Run a hub for the duration of the block; its actors and background tasks stop at exit.

    ``store`` records every mutation before it is applied (the journal of a ``workerhub.persistence``
    store; default: nothing recorded). The hub never imports persistence: storage drives it through
    :meth:`writes_held`, :meth:`export_state`, :meth:`restore` and :meth:`replay`.
    """
    settings = settings or Settings()
    clock = clock or Clock()
    clock.start()
    async with trio.open_nursery() as nursery:
        hub = Hub(settings, clock, store or NoLog(), nursery)
        nursery.start_soon(hub._trim_forever)
        try:
            yield hub
        finally:
            hub.reset()
            nursery.cancel_scope.cancel()
