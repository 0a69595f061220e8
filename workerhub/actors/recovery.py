"""Recovery glue for persistence: a consistent export of the hub, restore from a snapshot, journal replay.

All synchronous (no mailbox, no await): storage calls them while the write gate is held or before the
server takes requests. The hub never imports persistence; storage drives it through these methods.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from ..errors import WorkerRegistrationFailed
from ..hubstate import HubState, SavedWorker
from ..messages import Identity
from .registry import Registry, _Company, _effect
from .worker import WorkerActor, WorkerState

__all__ = ["Recovery"]


class Recovery(Registry):
    """Export, restore and replay of the registry (a base of :class:`workerhub.actors.hub.Hub`)."""

    def export_state(self) -> HubState:
        """A consistent copy of the registrations and every history, taken now without awaiting.

        Cheap (O(workers + chunks)): histories are frozen copy-on-write views, so the caller may encode the
        result in a thread while requests go on. Call it inside :meth:`Hub.writes_held`.
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
        have expired since (their actors retire as soon as they run).

        Expired ones are restored too: the journal replayed next judges liveness at each record's time, and
        a report written while such a worker was alive must find it, not register it anew."""
        for company_id, worker_id, history in state.histories:
            self._companies.setdefault(company_id, _Company()).histories[worker_id] = history
        now = self.clock.wall()
        expired = 0
        for saved in state.workers:
            expired += saved.expires_at <= now
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
        try:
            actor, _spawned = self._target(op, identity, payload, ip, at, mono)
        except WorkerRegistrationFailed:
            return  # refused live too, after it was journaled
        if actor is None:
            return
        _effect(op, actor, payload, ip, at)()
        # The effect renewed the timeout from the clock's present; a replayed one runs from ``at``.
        actor.deadline = mono + actor.state.register_timeout

    def _monotonic_at(self, wall: float) -> float:
        """trio's clock reading that corresponds to wall time ``wall`` (may be in the past)."""
        return self.clock.monotonic() + (wall - self.clock.wall())


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
