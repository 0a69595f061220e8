"""Frozen value types for what crosses the hub's boundary, named for the wire concept they carry.

Times: report ``timestamp`` and every ``*_ms`` field are epoch **milliseconds**; query ``from_date`` /
``to_date`` are epoch **seconds** (as ClearML sends them); ``interval`` and timeouts are seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from .stats.series import SeriesShape

__all__ = [
    "Identity",
    "DEFAULT_IDENTITY",
    "RegisterRequest",
    "StatusReport",
    "StatsItem",
    "StatsQuery",
    "ActivityQuery",
    "Aggregation",
    "Sample",
    "WorkerFilter",
    "STAT_KEYS",
]

Aggregation = Literal["avg", "min", "max"]
Sample = tuple[str, str, float]
"""One stat record's payload: ``(metric, variant, value)``; variant is ``"0"``, ``"1"``, … or ``"total"``."""


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is calling. Registry entries are keyed by (company, user, worker id), stats by (company, id)."""

    company: str
    user: str
    company_name: str = ""
    user_name: str = ""


DEFAULT_IDENTITY = Identity("workerhub", "workerhub", "workerhub", "workerhub")


@dataclass(frozen=True, slots=True)
class RegisterRequest:
    worker: str
    timeout: int | None = 600
    queues: tuple[str, ...] = ()
    tags: tuple[str, ...] | None = None
    system_tags: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class StatusReport:
    """A validated ``workers.status_report``; ``samples`` is machine_stats already flattened."""

    worker: str
    timestamp: int
    task: str | None = None
    queue: str | None = None
    queues: tuple[str, ...] | None = None
    samples: tuple[Sample, ...] = ()
    tags: tuple[str, ...] | None = None
    system_tags: tuple[str, ...] | None = None
    # The ingest fast path (api.parse sets both): the samples' interned shape and their values in its order,
    # so the hub skips per-series work for a shape the worker sent before. Not part of the report's value
    # (not compared, not journaled); None when built otherwise (replay, tests): the hub derives them.
    shape: SeriesShape | None = field(default=None, compare=False, repr=False)
    values: Sequence[float] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class StatsItem:
    key: str
    aggregation: Aggregation = "avg"


@dataclass(frozen=True, slots=True)
class StatsQuery:
    from_date: float
    to_date: float
    interval: int
    items: tuple[StatsItem, ...]
    worker_ids: tuple[str, ...] = ()
    split_by_variant: bool = False
    split_by_resource: bool = False


@dataclass(frozen=True, slots=True)
class ActivityQuery:
    from_date: float
    to_date: float
    interval: int


@dataclass(frozen=True, slots=True)
class WorkerFilter:
    """get_all / get_count selection added after 2.4: tag filters (``-`` prefix excludes) and an id glob.

    ``None`` (or an empty list / pattern) selects everything for that field.
    """

    tags: tuple[str, ...] | None = None
    system_tags: tuple[str, ...] | None = None
    worker_pattern: str | None = None

    @property
    def empty(self) -> bool:
        return not self.tags and not self.system_tags and not self.worker_pattern


STAT_KEYS = (
    "cpu_usage",
    "cpu_temperature",
    "memory_used",
    "memory_free",
    "gpu_usage",
    "gpu_temperature",
    "gpu_fraction",
    "gpu_memory_free",
    "gpu_memory_used",
    "network_tx",
    "network_rx",
    "disk_free_home",
    "disk_free_temp",
    "disk_read",
    "disk_write",
)
"""The get_stats ``items[].key`` enum since API 2.32 (``worker_stat_key``); ``gpu_fraction`` has no data."""
