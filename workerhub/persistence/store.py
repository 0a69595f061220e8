"""The persistence protocol between the hub and its storage, and the state that crosses it."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..messages import Identity

if TYPE_CHECKING:
    from ..actors.hub import Hub
    from ..actors.worker import WorkerState

__all__ = ["HubState", "Store"]


@dataclass(slots=True)
class HubState:
    """Everything the hub holds, as :meth:`Hub.export_state` copies it and :meth:`Hub.restore` loads it.

    ``wall`` is the hub's wall time (epoch s) of the copy; each worker comes with the wall time its
    registration expires at; ``histories`` are ``(company, worker id, history)`` where history is a
    :class:`~workerhub.stats.state.FrozenHistory` when exported and a ``WorkerHistory`` when loaded.
    """

    wall: float
    workers: list[tuple[WorkerState, float]]
    histories: list[tuple[str, str, Any]]


class Store(Protocol):
    """What the hub needs from storage.

    :meth:`append` is awaited for every accepted mutation *before* it is applied and acknowledged, so a
    durable store can make it survive a crash; if it raises :class:`~workerhub.errors.DataError` the
    request fails and nothing is applied.
    """

    async def append(self, op: str, identity: Identity, payload: Any, ip: str, at: float) -> None:
        """Record mutation ``op`` (``register``, ``unregister``, ``status_report``) made at wall time ``at``."""
        ...

    def serving(self, hub: Hub) -> AbstractAsyncContextManager[None]:
        """Load saved state into ``hub``, keep it saved while the block runs, save it at a clean exit."""
        ...

    async def aclose(self) -> None:
        """Flush and release whatever the store holds."""
        ...
