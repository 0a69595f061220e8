"""The registry: worker actors per company, the histories that outlive them, admission, and the one rule
each mutation follows (shared by the live path and journal replay).

Registry entries are keyed by (company, user, worker id) and histories by (company, worker id), as upstream
keys Redis and ES (spec §0.5). A registered worker's actor holds a reference to its history and is its only
writer while registered; when the actor expires or unregisters, the history stays here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import trio

from ..clock import Clock
from ..config import Settings
from ..errors import ValidationError, WorkerRegistrationFailed
from ..messages import Identity, StatusReport
from ..stats import WorkerHistory
from ..stats.series import EMPTY_LAYOUT
from .memory_limit import MemoryLimit
from .worker import WorkerActor, WorkerState

__all__ = ["Registry"]


@dataclass(slots=True)
class _Company:
    actors: dict[tuple[str, str], WorkerActor] = field(default_factory=dict)
    histories: dict[str, WorkerHistory] = field(default_factory=dict)

    def history(self, worker_id: str) -> WorkerHistory:
        h = self.histories.get(worker_id)
        if h is None:
            h = self.histories[worker_id] = WorkerHistory()
        return h


def _worker_of(op: str, payload: Any) -> str:
    """The worker id a journaled mutation names (unregister journals the bare id)."""
    return payload if op == "unregister" else str(payload.worker)


def _effect(op: str, actor: WorkerActor, payload: Any, ip: str, at: float) -> Callable[[], None]:
    """What mutation ``op`` does to its worker's actor at wall time ``at`` (s): the one definition that
    the live path (through the mailbox) and replay (inline) both run."""
    if op == "register":
        return lambda: actor.apply_register(payload, ip, at)
    if op == "status_report":
        return lambda: actor.apply_report(payload, ip, at)
    if op == "unregister":
        return actor.apply_unregister
    raise ValueError(f"unknown mutation {op!r}")


class Registry:
    """Actors and histories per company; the hub builds on it (see :class:`workerhub.actors.hub.Hub`)."""

    def __init__(self, settings: Settings, clock: Clock, nursery: trio.Nursery) -> None:
        self.settings = settings
        self.clock = clock
        self._nursery = nursery
        self._companies: dict[str, _Company] = {}
        self.memory = MemoryLimit(settings.max_memory_mb)

    def _company(self, identity: Identity) -> _Company:
        c = self._companies.get(identity.company)
        if c is None:
            c = self._companies[identity.company] = _Company()
        return c

    def _live(self, identity: Identity, worker: str, mono: float | None = None) -> WorkerActor | None:
        """The worker's actor if it is alive at trio time ``mono`` (default: now)."""
        company = self._companies.get(identity.company)
        actor = company.actors.get((identity.user, worker)) if company else None
        if actor is not None and not actor.alive(self.clock.monotonic() if mono is None else mono):
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

    def _target(
        self, op: str, identity: Identity, payload: Any, ip: str, at: float, mono: float
    ) -> tuple[WorkerActor | None, bool]:
        """The actor mutation ``op`` applies to, judged at trio time ``mono``, and whether it was just spawned.

        The live one; else a new one, registered with the request's timeout (register) or the default one
        (status_report, when ``auto_register``); else None: nothing to apply to. Raises
        WorkerRegistrationFailed when a new actor would pass ``max_workers``.
        """
        worker = _worker_of(op, payload)
        actor = self._live(identity, worker, mono)
        if actor is not None or op == "unregister":
            return actor, False
        if op == "status_report" and not self.settings.auto_register:
            return None, False
        timeout = payload.timeout if op == "register" else self.settings.default_timeout
        return self._spawn(identity, worker, timeout, ip, at), True

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
