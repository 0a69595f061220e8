"""How much memory the retention settings imply: the one place that sizes the stats layout.

Figures follow the layout in :mod:`.columns` (raw: float32 per value, int64 timestamp and a task byte per
report; tiers: per 10 min and 1 h slot and column −min/max float32 and sum/count float64, plus two int64
report counts per slot) plus per-object overheads. They estimate, they do not measure (the measured check:
``bench/bench_memory.py``). ``workerhub serve`` logs them at start so an operator sees what a fleet will
cost before it arrives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..config import Settings
from .columns import DAY_MS, HOUR_MS, TIER_MS

__all__ = ["Footprint", "estimate_bytes", "retention_footprint"]

_ACTOR_BYTES = 5_500
"""A registered worker's actor: trio task, mailbox, cancel scope and state (measured: ~5.3-5.5 KB)."""
_CHUNK_OBJECT_BYTES = 450
"""Fixed cost of one raw chunk: the object, its three numpy arrays and its SortedDict slot."""
_DAY_OBJECT_BYTES = 900
"""Fixed cost of one tier day: the object, six 2-D/3-D numpy arrays in three lists, its SortedDict slot."""
_HOUR_S = HOUR_MS / 1000
_DAY_S = DAY_MS / 1000


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


def _raw_per_worker(raw_retention_s: float, cadence_s: float, columns: int) -> float:
    # Retention drops whole hour chunks by write time: up to one more hour than the setting is held.
    held_s = raw_retention_s + _HOUR_S
    return held_s / cadence_s * (columns * 4 + 8 + 1) + (held_s / _HOUR_S + 1) * _CHUNK_OBJECT_BYTES


def _tiers_per_worker(raw_retention_s: float, tier_retention_s: float, columns: int) -> float:
    # A day goes only once no raw chunk is left in it, and the retained span straddles a day boundary.
    days = math.ceil(max(tier_retention_s, raw_retention_s) / _DAY_S) + 1
    slots = sum(DAY_MS // t for t in TIER_MS)
    return days * (slots * (columns * 2 * (4 + 8) + 2 * 8) + _DAY_OBJECT_BYTES)


def estimate_bytes(
    workers: int,
    columns: int = 24,
    cadence_s: float = 10.0,
    raw_retention_s: float = 86_400.0,
    tier_retention_s: float = 30 * 86_400.0,
) -> int:
    """Memory of the stats (raw + tiers, bytes, ±10 %) for a fleet: ``columns`` values per report (an
    8-core, 2-GPU agent sends 24), one report per ``cadence_s`` per worker.

    >>> round(estimate_bytes(1000) / 2**30, 1)  # 1,000 workers, 24 h raw, 30 days of tiers
    3.8
    """
    per = _raw_per_worker(raw_retention_s, cadence_s, columns)
    per += _tiers_per_worker(raw_retention_s, tier_retention_s, columns)
    return int(workers * per)


def retention_footprint(
    settings: Settings, workers: int, *, report_period: float = 10.0, series: int = 24
) -> Footprint:
    """Memory for ``workers`` workers each reporting ``series`` values every ``report_period`` seconds,
    split into raw rows, rollup tiers and registrations (the stats part is :func:`estimate_bytes`)."""
    raw = _raw_per_worker(settings.raw_retention, report_period, series)
    tiers = _tiers_per_worker(settings.raw_retention, settings.tier_retention, series)
    return Footprint(workers, int(workers * raw), int(workers * tiers), workers * _ACTOR_BYTES)
