"""The persistence protocols: what storage needs from the thing it persists, and what it offers it.

Storage never imports the hub (``workerhub.actors``): it drives anything that implements
:class:`Persisted`, and exchanges plain data with it (:mod:`workerhub.hubstate`).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from ..hubstate import HubState, MutationLog
from ..messages import Identity

__all__ = ["HubState", "Persisted", "Store"]


class Persisted(Protocol):
    """What a store needs from the state it keeps (the hub implements it)."""

    def writes_held(self) -> AbstractAsyncContextManager[None]:
        """Inside the block no mutation is half-applied and none starts: a consistent cut can be taken."""
        ...

    def export_state(self) -> HubState:
        """The whole state now, synchronously (histories as frozen views or live histories)."""
        ...

    def restore(self, state: HubState) -> int:
        """Load ``state`` into the empty target; returns how many registrations had already expired."""
        ...

    def replay(self, op: str, identity: Identity, payload: Any, ip: str, at: float) -> None:
        """Apply one journal record as the live path applied it at wall time ``at``."""
        ...

    def trim(self) -> int:
        """Apply retention now (after a load: the snapshot may hold rows a live trim dropped since)."""
        ...


class Store(MutationLog, Protocol):
    """What the server needs from storage.

    :meth:`append` (the :class:`~workerhub.hubstate.MutationLog`) is awaited for every accepted mutation
    *before* it is applied and acknowledged, so a durable store can make it survive a crash; if it raises
    :class:`~workerhub.errors.DataError` the request fails and nothing is applied.
    """

    def serving(self, target: Persisted) -> AbstractAsyncContextManager[None]:
        """Load saved state into ``target``, keep it saved while the block runs, save it at a clean exit."""
        ...

    async def aclose(self) -> None:
        """Flush and release whatever the store holds."""
        ...
