"""How much memory the retention settings imply: one function, so new storage (rollup tiers) updates one place.

Figures are from the layout in :mod:`.history` (8 bytes per value, 8 per report timestamp, 1 per task flag)
plus measured per-object overheads; they estimate, they do not measure. ``workerhub serve`` logs them at
start so an operator sees what a fleet will cost before it arrives.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Settings
from .history import CHUNK_MS

__all__ = ["Footprint", "retention_footprint"]

_ACTOR_BYTES = 5_500
"""A registered worker's actor: trio task, mailbox, cancel scope and state (measured: ~5.3-5.5 KB)."""
_ARRAY_BYTES = 80
"""Fixed cost of one ``array`` object and its dict slot, per series per chunk."""


@dataclass(frozen=True, slots=True)
class Footprint:
    """Estimated bytes for ``workers`` workers: raw samples, rollup tiers, registrations."""

    workers: int
    raw: int
    tiers: int
    registry: int

    @property
    def total(self) -> int:
        return self.raw + self.tiers + self.registry


def retention_footprint(
    settings: Settings, workers: int, *, report_period: float = 10.0, series: int = 24
) -> Footprint:
    """Memory for ``workers`` workers each reporting ``series`` values every ``report_period`` seconds.

    Raw retention drops whole chunks by write time, so up to one chunk (an hour) more than ``raw_retention``
    is held. Tiers: none yet (``tier_retention`` has no storage to size); add them here when they exist.
    """
    chunk_s = CHUNK_MS / 1000
    rows = (settings.raw_retention + chunk_s) / report_period
    chunks = (settings.raw_retention + chunk_s) / chunk_s + 1
    per_worker_raw = rows * (8 + 1 + 8 * series) + chunks * (series + 2) * _ARRAY_BYTES
    return Footprint(workers, int(workers * per_worker_raw), 0, workers * _ACTOR_BYTES)
