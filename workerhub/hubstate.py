"""The plain data that crosses between the hub (``actors``) and its storage (``persistence``).

Neither of those two packages imports the other: both import this module. The hub exports a
:class:`HubState` and restores one; it records each mutation through a :class:`MutationLog` (the journal,
when there is one). Storage sees registrations as :class:`SavedWorker` records, never as the actors'
mutable ``WorkerState``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from .messages import Identity

__all__ = ["HubState", "MutationLog", "NoLog", "SavedWorker"]


@dataclass(frozen=True, slots=True)
class SavedWorker:
    """One registration as persisted: the actor's fields, and the wall time (epoch s) it expires at."""

    identity: Identity
    id: str
    ip: str
    register_timeout: int
    register_time: float
    last_activity_time: float
    last_report_time: float | None
    queues: tuple[str, ...]
    queue: str | None
    task: str | None
    task_since: float | None
    tags: tuple[str, ...] | None
    system_tags: tuple[str, ...] | None
    expires_at: float


@dataclass(slots=True)
class HubState:
    """Everything the hub holds at one cut.

    ``wall`` is the hub's wall time (epoch s) of the cut; ``histories`` are ``(company, worker id, history)``
    where history is anything with ``to_state()`` when exported (a frozen view or a live
    ``WorkerHistory``) and a ``WorkerHistory`` when loaded.
    """

    wall: float
    workers: list[SavedWorker]
    histories: list[tuple[str, str, Any]]


class MutationLog(Protocol):
    """Where the hub records a mutation before applying it (the journal of a durable store)."""

    async def append(self, op: str, identity: Identity, payload: Any, ip: str, at: float) -> None:
        """Record mutation ``op`` (``register``, ``unregister``, ``status_report``) made at wall time ``at``;
        raise :class:`~workerhub.errors.DataError` if it cannot be, and the mutation is then refused."""
        ...


class NoLog:
    """Record nothing (the hub's default: state in memory only)."""

    async def append(self, op: str, identity: Identity, payload: Any, ip: str, at: float) -> None:
        return None
