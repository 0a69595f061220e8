"""The hub: registry of worker actors per company, stats histories that outlive them, queries and merge.

Where history lives (DESIGN "Stats outlive registration"): the hub owns one :class:`WorkerHistory` per
(company, worker id) in an archive; a registered worker's actor holds a reference to it and is its only
writer while registered. When the actor expires or unregisters, the history stays in the archive, so
get_stats / get_metric_keys / get_activity_report still see it until retention drops it, and
re-registering the same id continues the same history. Registry entries are keyed by
(company, user, worker id) and histories by (company, worker id), as upstream keys Redis and ES (spec §0.5).

Mutations go through the worker's actor mailbox; queries read histories and actor state synchronously
(no await between reads), which trio's single thread makes consistent.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field, fields
from typing import Any

import trio

from ..clock import Clock
from ..config import Settings
from ..errors import (
    FieldsValueError,
    InvalidWorkerId,
    ValidationError,
    WorkerNotRegistered,
    WorkerRegistrationFailed,
    WorkerStatsNotFound,
)
from ..hubstate import HubState, MutationLog, NoLog, SavedWorker
from ..messages import DEFAULT_IDENTITY, ActivityQuery, Identity, RegisterRequest, StatsQuery, StatusReport
from ..ops.metrics import Metrics
from ..ops.probes import Readiness
from ..stats import ActivityJob, StatsJob, WorkerHistory, metric_keys
from ..stats.grid import ActivityGridJob, StatsGridJob
from ..stats.series import EMPTY_LAYOUT
from .gate import WriteGate
from .memory_limit import MemoryLimit
from .worker import ActorGone, WorkerActor, WorkerState

Tagged = Callable[[str, "tuple[str, ...] | None", "tuple[str, ...] | None"], bool]
"""A get_all / get_count filter: ``match(worker_id, tags, system_tags)`` (built by workerhub.api.filters)."""

__all__ = ["Hub", "open_hub"]

log = logging.getLogger(__name__)

UNTRACKABLE = "untrackable"


@dataclass(slots=True)
class _Company:
    actors: dict[tuple[str, str], WorkerActor] = field(default_factory=dict)
    histories: dict[str, WorkerHistory] = field(default_factory=dict)

    def history(self, worker_id: str) -> WorkerHistory:
        h = self.histories.get(worker_id)
        if h is None:
            h = self.histories[worker_id] = WorkerHistory()
        return h


class Hub:
    """The workers service, in process. Create it with :func:`open_hub`.

    Every method takes the caller's :class:`Identity` (default: the open-mode identity); companies never
    see each other's workers or stats.
    """

    def __init__(self, settings: Settings, clock: Clock, store: MutationLog, nursery: trio.Nursery) -> None:
        self.settings = settings
        self.clock = clock
        self.store = store
        self._nursery = nursery
        self._companies: dict[str, _Company] = {}
        self.writes = WriteGate()  # every mutation passes it; a snapshot closes it for a consistent cut
        self.memory = MemoryLimit(settings.max_memory_mb)
        self.metrics = Metrics(self)  # /metrics: request counters, and what the hub holds read at scrape time
        self.readiness = Readiness(self)  # /readyz; serve() marks the state loading while it reads the disk

    # --- registry ----------------------------------------------------------------------------------------

    def _company(self, identity: Identity) -> _Company:
        c = self._companies.get(identity.company)
        if c is None:
            c = self._companies[identity.company] = _Company()
        return c

    def _live(self, identity: Identity, worker: str) -> WorkerActor | None:
        company = self._companies.get(identity.company)
        actor = company.actors.get((identity.user, worker)) if company else None
        if actor is not None and not actor.alive(self.clock.monotonic()):
            actor.retire()  # lazily: its deadline passed but its task has not run yet
            return None
        return actor

    def _spawn(self, identity: Identity, worker: str, timeout: int, ip: str, now: float) -> WorkerActor:
        company = self._company(identity)
        if len(company.actors) >= self.settings.max_workers:
            raise WorkerRegistrationFailed(
                f"the server holds its maximum of {self.settings.max_workers} workers", worker=worker
            )
        state = WorkerState(
            id=worker,
            identity=identity,
            ip=ip,
            register_timeout=timeout,
            register_time=now,
            last_activity_time=now,
        )
        actor = WorkerActor(state, company.history(worker), self.clock, self._forget)
        company.actors[actor.key] = actor
        self._nursery.start_soon(actor.run)
        return actor

    def _forget(self, actor: WorkerActor) -> None:
        company = self._companies.get(actor.state.identity.company)
        if company is not None and company.actors.get(actor.key) is actor:
            del company.actors[actor.key]

    def _admit(self, identity: Identity, worker: str, report: StatusReport | None = None) -> None:
        """Refuse a call that would grow what the hub keeps past a limit, before anything is journaled.

        A worker that is not registered is refused when the company has ``max_workers`` (as :meth:`_spawn`
        does, but before the journal write). A worker id the company keeps no stats for is one more
        history (it outlives registration, so ``max_workers`` cannot bound it): refused beyond
        ``max_histories`` per company, or while the process is above ``max_memory_mb``. Above that memory
        limit a known worker may still report, but not a series it has no stats for. 400, never 429/503:
        retrying cannot succeed until an operator acts.
        The check runs before the await of the journal write, so concurrent first reports of new ids can
        overshoot ``max_histories`` by at most the number of such requests in flight.
        """
        company = self._companies.get(identity.company)
        full = company is not None and len(company.actors) >= self.settings.max_workers
        if full and self._live(identity, worker) is None:  # _spawn checks again, after the journal write
            raise WorkerRegistrationFailed(
                f"the server holds its maximum of {self.settings.max_workers} workers", worker=worker
            )
        history = company.histories.get(worker) if company is not None else None
        if history is None:
            held = len(company.histories) if company is not None else 0
            if held >= self.settings.max_histories:
                raise WorkerRegistrationFailed(
                    f"the company keeps stats of {held} worker ids, the limit (max_histories) is "
                    f"{self.settings.max_histories}",
                    worker=worker,
                )
            if self.memory.over():
                raise WorkerRegistrationFailed(
                    f"the server is above its memory limit (max_memory_mb={self.memory.limit_mb}): no new workers",
                    worker=worker,
                )
        elif report is not None and report.samples and self.memory.over():
            known = history.counts
            for metric, variant, _value in report.samples:
                if (metric, variant) not in known:
                    raise ValidationError(
                        f"machine_stats.{metric} variant {variant} is a new series and the server is above its "
                        f"memory limit (max_memory_mb={self.memory.limit_mb})",
                        field=f"machine_stats.{metric}",
                    )

    def _check(self) -> None:
        """Assert the registry's invariants (for tests; O(workers + histories)).

        Every registered actor sits under its own key in its own company, is not retired (retirement
        removes it at once), and writes the very history object the company keeps for its id; every
        history passes its own ``_check()``.
        """
        for company_id, company in self._companies.items():
            for key, actor in company.actors.items():
                assert key == actor.key, (company_id, key, actor.key)
                assert actor.state.identity.company == company_id, (company_id, key)
                assert not actor.retired, ("retired actor still registered", company_id, key)
                shared = company.histories.get(actor.state.id)
                assert actor.history is shared, ("history not shared", company_id, key)
            for worker_id, history in company.histories.items():
                assert isinstance(worker_id, str) and isinstance(history, WorkerHistory), (company_id, worker_id)
                history._check()

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
            while True:
                actor = self._live(identity, req.worker)
                if actor is None:
                    actor = self._spawn(identity, req.worker, req.timeout, ip, at)
                    actor.apply_register(req, ip, at)
                    return
                try:
                    await actor.call(lambda: actor.apply_register(req, ip, at))  # noqa: B023 -- awaited in this iteration
                    return
                except ActorGone:
                    continue

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
            await self.store.append("unregister", identity, worker, ip, self.clock.wall())
            try:
                await actor.call(actor.apply_unregister)
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
            while True:
                actor = self._live(identity, report.worker)
                if actor is None:
                    if not self.settings.auto_register:
                        raise InvalidWorkerId(worker=report.worker)
                    actor = self._spawn(identity, report.worker, self.settings.default_timeout, ip, at)
                try:
                    await actor.call(lambda: actor.apply_report(report, ip, at))  # noqa: B023 -- awaited in this iteration
                    return
                except ActorGone:
                    continue

    def _check_series(self, identity: Identity, report: StatusReport) -> None:
        """400/12 when the report would take its worker past ``max_series_per_worker`` distinct series."""
        if not report.samples:
            return
        company = self._companies.get(identity.company)
        history = company.histories.get(report.worker) if company else None
        layout = history.layout if history is not None else EMPTY_LAYOUT
        held, new = len(layout), layout.missing((m, v) for m, v, _x in report.samples)
        limit = self.settings.max_series_per_worker
        if new and held + new > limit:
            raise ValidationError(
                f"machine_stats would give worker {report.worker} {held + new} distinct series, "
                f"at most {limit} (max_series_per_worker)",
                field="machine_stats",
            )

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

    def _live_actors(self, identity: Identity) -> Iterator[WorkerActor]:
        company = self._companies.get(identity.company)
        if company is None:
            return
        now = self.clock.monotonic()
        for actor in list(company.actors.values()):
            if actor.alive(now):
                yield actor
            else:
                actor.retire()

    def _histories(self, identity: Identity, worker_ids: tuple[str, ...] | list[str]) -> dict[str, WorkerHistory]:
        company = self._companies.get(identity.company)
        if company is None:
            return {}
        if not worker_ids:
            return {w: h for w, h in company.histories.items() if not h.empty}
        return {w: company.histories[w] for w in dict.fromkeys(worker_ids) if w in company.histories}

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

    # --- persistence: consistent export, restore, journal replay (synchronous: no mailbox, no await) -------

    def writes_held(self) -> AbstractAsyncContextManager[None]:
        """Hold new mutations at the gate and wait for those in flight: the state is a consistent cut
        (every journaled mutation applied, none half-done) for the body of the block."""
        return self.writes.closed()

    def export_state(self) -> HubState:
        """A consistent copy of the registrations and every history, taken now without awaiting.

        Cheap (O(workers + chunks)): histories are frozen copy-on-write views, so the caller may encode the
        result in a thread while requests go on. Call it inside :meth:`writes_held`.
        """
        now, mono = self.clock.wall(), self.clock.monotonic()
        workers = [
            _saved(actor.state, now + (actor.deadline - mono))
            for company in self._companies.values()
            for actor in company.actors.values()
            if actor.alive(mono)
        ]
        histories = [
            (company_id, worker_id, history.freeze())
            for company_id, company in self._companies.items()
            for worker_id, history in company.histories.items()
        ]
        return HubState(now, workers, histories)

    def restore(self, state: HubState) -> int:
        """Load ``state`` (histories as ``WorkerHistory``) into this empty hub; returns how many workers
        were dropped because their registration expired while the server was down."""
        for company_id, worker_id, history in state.histories:
            self._companies.setdefault(company_id, _Company()).histories[worker_id] = history
        now = self.clock.wall()
        expired = 0
        for saved in state.workers:
            if saved.expires_at <= now:
                expired += 1
                continue
            worker_state = _restored(saved)
            company = self._company(worker_state.identity)
            actor = WorkerActor(worker_state, company.history(worker_state.id), self.clock, self._forget)
            actor.deadline = self._monotonic_at(saved.expires_at)
            company.actors[actor.key] = actor
            self._nursery.start_soon(actor.run)
        return expired

    def replay(self, op: str, identity: Identity, payload: Any, ip: str, at: float) -> None:
        """Apply one journal record as the live path applied it at wall time ``at`` (s): liveness and
        timeouts are judged at ``at``, so a worker that expired before a later report is re-registered."""
        mono = self._monotonic_at(at)
        worker = payload if op == "unregister" else payload.worker
        company = self._companies.get(identity.company)
        actor = company.actors.get((identity.user, worker)) if company else None
        if actor is not None and not actor.alive(mono):
            actor.retire()
            actor = None
        if op == "unregister":
            if actor is not None:
                actor.apply_unregister()
            return
        if actor is None:
            if op == "status_report" and not self.settings.auto_register:
                return
            timeout = payload.timeout if op == "register" else self.settings.default_timeout
            try:
                actor = self._spawn(identity, worker, timeout, ip, at)
            except WorkerRegistrationFailed:
                return  # refused live too, after it was journaled
        if op == "register":
            actor.apply_register(payload, ip, at)
        else:
            actor.apply_report(payload, ip, at)
        actor.deadline = mono + actor.state.register_timeout

    def _monotonic_at(self, wall: float) -> float:
        """trio's clock reading that corresponds to wall time ``wall`` (may be in the past)."""
        return self.clock.monotonic() + (wall - self.clock.wall())

    # --- maintenance ---------------------------------------------------------------------------------------

    def trim(self) -> int:
        """Apply raw and tier retention now; returns the number of raw reports dropped."""
        now = self.clock.wall()
        cutoff = now - self.settings.raw_retention
        tier_cutoff = now - max(self.settings.tier_retention, self.settings.raw_retention)
        dropped = 0
        for company in self._companies.values():
            registered = {worker_id for _user, worker_id in company.actors}
            for worker_id, history in list(company.histories.items()):
                dropped += history.drop_written_before(cutoff, tier_cutoff)
                if history.empty and worker_id not in registered:
                    del company.histories[worker_id]
        return dropped

    async def _trim_forever(self) -> None:
        period = max(1.0, min(60.0, self.settings.raw_retention / 10))
        while True:
            await trio.sleep(period)
            dropped = self.trim()
            if dropped:
                log.debug("retention dropped %d reports", dropped)

    def reset(self) -> None:
        """Forget every worker and every stat, at once, and put wall time back to real time (or to the
        clock's pinned start): for test suites, between tests.

        Constant time: the registry is swapped for an empty one, and the forgotten actors (unreachable from
        now on) are retired by a background task in small batches, so that a reset with thousands of
        workers neither blocks the caller nor stalls the requests that follow it.
        """
        old, self._companies = self._companies, {}
        self.clock.start()
        actors = [actor for company in old.values() for actor in company.actors.values()]
        if actors:
            self._nursery.start_soon(self._retire_forgotten, actors)

    @staticmethod
    async def _retire_forgotten(actors: list[WorkerActor]) -> None:
        for i, actor in enumerate(actors, 1):
            actor.retire()  # its _forget finds no registry entry for it: a no-op
            if i % 64 == 0:
                await trio.sleep(0)  # let requests in between

    def advance_clock(self, seconds: float) -> None:
        """Move time forward (testing mode only: trio must run on a MockClock); expiries fire."""
        self.clock.advance(seconds)

    def statistics(self) -> dict[str, int]:
        """Counts of what the hub holds: companies, live workers, histories, retained reports."""
        return {
            "companies": len(self._companies),
            "workers": sum(len(c.actors) for c in self._companies.values()),
            "histories": sum(len(c.histories) for c in self._companies.values()),
            "reports": sum(len(h) for c in self._companies.values() for h in c.histories.values()),
        }

    def company_statistics(self) -> dict[str, dict[str, int]]:
        """Per company: live ``workers``, retained ``histories``, ``reports`` and stat ``values`` (for /metrics)."""
        mono = self.clock.monotonic()
        return {
            company_id: {
                "workers": sum(1 for a in c.actors.values() if a.alive(mono)),
                "histories": len(c.histories),
                "reports": sum(len(h) for h in c.histories.values()),
                "values": sum(sum(h.counts.values()) for h in c.histories.values()),
            }
            for company_id, c in self._companies.items()
        }

    def live_histories(self) -> Iterator[tuple[str, str, WorkerHistory]]:
        """``(company, worker id, history)`` of every live worker, once per id (for /metrics' fleet gauges)."""
        mono = self.clock.monotonic()
        for company_id, c in list(self._companies.items()):
            seen = {a.state.id for a in c.actors.values() if a.alive(mono)}
            for worker_id in sorted(seen):
                history = c.histories.get(worker_id)
                if history is not None:
                    yield company_id, worker_id, history


# The registration fields a snapshot keeps: every field of SavedWorker but the expiry, named as on WorkerState
# (one list, so a field added to both is saved and restored without a third edit).
_SAVED_FIELDS = tuple(f.name for f in fields(SavedWorker) if f.name != "expires_at")


def _saved(ws: WorkerState, expires_at: float) -> SavedWorker:
    values: dict[str, Any] = {name: getattr(ws, name) for name in _SAVED_FIELDS}
    values["queues"] = tuple(ws.queues)
    return SavedWorker(**values, expires_at=expires_at)


def _restored(saved: SavedWorker) -> WorkerState:
    values: dict[str, Any] = {name: getattr(saved, name) for name in _SAVED_FIELDS}
    values["queues"] = list(saved.queues)
    return WorkerState(**values)


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
