"""Readiness: is the state restored from disk, and can changes be journaled? (``/readyz``)

``/livez`` needs no state: if the event loop answers a request at all, the process is live.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..storestats import PersistenceStatistics

if TYPE_CHECKING:
    from ..actors.hub import Hub

__all__ = ["Readiness", "store_statistics"]


def store_statistics(hub: Hub) -> PersistenceStatistics | None:
    """The durable store's counters, or None when the hub keeps state in memory only."""
    stats = getattr(hub.store, "statistics", None)
    return stats if isinstance(stats, PersistenceStatistics) else None


class Readiness:
    """Ready by default (an embedded hub has nothing to load); :func:`workerhub.server.serve` marks it
    loading before the HTTP listener starts and loaded once the snapshot and journal are replayed."""

    __slots__ = ("_hub", "serving")

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self.serving = True
        """False while the saved state loads: workers.* and the debug state calls answer 503 until then."""

    def loading(self) -> None:
        self.serving = False

    def loaded(self) -> None:
        self.serving = True

    def reason(self) -> str | None:
        """Why the server is not ready, or None when it is."""
        if not self.serving:
            return "loading the saved state (snapshot and journal) from the data directory"
        stats = store_statistics(self._hub)
        if stats is not None and stats.journal_error is not None:
            return f"persistence is not writable: {stats.journal_error}"
        return None
