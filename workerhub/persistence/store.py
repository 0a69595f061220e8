"""The persistence protocol between the hub and its storage."""

from __future__ import annotations

from typing import Any, Protocol

from ..messages import Identity

__all__ = ["Store"]


class Store(Protocol):
    """What the hub needs from storage.

    :meth:`append` is awaited for every accepted mutation *before* it is applied and acknowledged, so a
    durable store can make it survive a crash; if it raises :class:`~workerhub.errors.DataError` the
    request fails and nothing is applied.
    """

    async def append(self, op: str, identity: Identity, payload: Any, ip: str, at: float) -> None:
        """Record mutation ``op`` (``register``, ``unregister``, ``status_report``) made at wall time ``at``."""
        ...

    async def aclose(self) -> None:
        """Flush and release whatever the store holds."""
        ...
