"""The compact building blocks of a history: raw chunks (one hour) and tier days.

Column ``c`` of a chunk or day is column ``c`` of its history's :class:`~.series.SeriesLayout`; a chunk or
day made before the layout grew is narrower, and the columns it lacks read as absent.

**Sealed objects are read-only.** Once a chunk or day is shared with a frozen cut (:meth:`seal`, called by
``WorkerHistory.freeze``), its arrays are marked ``writeable = False``: any write raises instead of
changing what a snapshot is encoding, and widening a sealed day raises too. Only the write path changes
data, and it first replaces a sealed object by a private copy (``thawed``). Reads never widen: they take a
narrower array's missing columns as absent.

Values are stored as **float32**, as upstream stores them in Elasticsearch (spec Q10): answers equal
clearml-server's to the bit, and a raw value costs 4 bytes. Sums are accumulated in float64.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .series import Placement

__all__ = ["DAY_MS", "HOUR_MS", "TIER_MS", "RawChunk", "TierDay"]

HOUR_MS = 3_600_000
"""Report-time span of one raw chunk."""
DAY_MS = 86_400_000
"""Report-time span of one tier day (the unit tier retention drops)."""
TIER_MS = (600_000, 3_600_000)
"""Bucket sizes of the rollup tiers, finest first: 10 min and 1 h (why no 1 min tier: docs/storage.md)."""
_SLOTS = tuple(DAY_MS // t for t in TIER_MS)


class RawChunk:
    """One hour of report time: rows in timestamp order.

    ``ts`` int64 ms, ``task`` bool, ``vals`` float32 ``(rows, columns)`` with NaN where a report did not
    carry a series. Arrays have spare capacity while the chunk is being written; :meth:`compact` trims it.
    ``partial``: created after older rows of this hour had already been dropped (only the tiers hold all
    of the hour), so raw answers for this hour would be incomplete.
    ``gen``: the owning history's generation when this chunk was made; an older one is shared with a
    :class:`~.state.FrozenHistory` (which may be reading it from another thread), so the history copies
    it (:meth:`thawed`) before the next write instead of changing it (copy-on-write).
    """

    __slots__ = ("ts", "task", "vals", "n", "last", "written", "partial", "gen")

    def __init__(self, width: int, partial: bool, capacity: int = 8) -> None:
        cap = max(1, capacity)
        self.ts = np.empty(cap, np.int64)
        self.task = np.empty(cap, np.bool_)
        self.vals = np.full((cap, width), np.nan, np.float32)
        self.n = 0
        self.last = 0  # ts[n - 1] as a Python int (when n > 0): the in-order test reads no numpy scalar
        self.written = -np.inf
        self.partial = partial
        self.gen = 0

    @classmethod
    def restore(
        cls, ts: np.ndarray, task: np.ndarray, vals: np.ndarray, written: float, partial: bool
    ) -> RawChunk:
        """A chunk holding exactly these (already validated, owned) arrays, without spare capacity."""
        chunk = cls.__new__(cls)
        chunk.ts, chunk.task, chunk.vals = ts, task, vals
        chunk.n = len(ts)
        chunk.last = int(ts[-1]) if len(ts) else 0
        chunk.written = written
        chunk.partial = partial
        chunk.gen = 0
        return chunk

    def thawed(self, gen: int) -> RawChunk:
        """A private, writable copy of generation ``gen`` (spare capacity kept: the hot chunk goes on
        being appended to)."""
        out = RawChunk.restore(self.ts.copy(), self.task.copy(), self.vals.copy(), self.written, self.partial)
        out.n = self.n
        out.last = self.last
        out.gen = gen
        return out

    def _grow(self, rows: int, width: int) -> None:
        if self.sealed:
            raise RuntimeError("a sealed chunk cannot grow: thaw it first")
        cap, old_w = self.vals.shape
        if rows > cap:
            cap = max(rows, cap + cap // 2 + 8)
            self.ts = np.resize(self.ts, cap)
            self.task = np.resize(self.task, cap)
        if rows > self.vals.shape[0] or width > old_w:
            vals = np.full((cap, max(width, old_w)), np.nan, np.float32)
            vals[: self.n, :old_w] = self.vals[: self.n]
            self.vals = vals

    def add(self, ts_ms: int, has_task: bool, placed: Placement, values: Sequence[float], width: int) -> None:
        """Insert one report's row (``values`` go to ``placed``'s columns) in timestamp order."""
        n = self.n
        vals = self.vals
        if n >= vals.shape[0] or width > vals.shape[1]:
            self._grow(n + 1, width)
            vals = self.vals
        ts = self.ts
        if n == 0 or ts_ms >= self.last:
            pos = n
            self.last = ts_ms
        else:  # a late report: shift the younger rows up by one (numpy copes with the overlap)
            pos = int(np.searchsorted(ts[:n], ts_ms, "right"))
            ts[pos + 1 : n + 1] = ts[pos:n]
            self.task[pos + 1 : n + 1] = self.task[pos:n]
            vals[pos + 1 : n + 1] = vals[pos:n]
            vals[pos] = np.nan
        ts[pos] = ts_ms
        self.task[pos] = has_task
        if placed.lo >= 0:  # consecutive columns: a slice, ~3x cheaper than fancy indexing
            vals[pos, placed.lo : placed.hi] = values
        else:
            vals[pos, placed.cols] = values
        self.n = n + 1

    def compact(self) -> None:
        """Drop spare capacity (called once the chunk is no longer the one being appended to)."""
        n = self.n
        if self.vals.shape[0] != n:
            if self.sealed:
                raise RuntimeError("a sealed chunk cannot be compacted: thaw it first")
            self.ts = self.ts[:n].copy()
            self.task = self.task[:n].copy()
            self.vals = self.vals[:n].copy()

    def span(self, lo_ms: int, hi_ms: int) -> tuple[int, int]:
        """Row slice ``[i, j)`` of the rows with ``lo_ms <= ts <= hi_ms``."""
        ts = self.ts[: self.n]
        return int(ts.searchsorted(lo_ms)), int(ts.searchsorted(hi_ms, "right"))

    @property
    def width(self) -> int:
        return int(self.vals.shape[1])

    def seal(self) -> None:
        """Make the arrays read-only: this chunk is now shared with a frozen cut."""
        for a in (self.ts, self.task, self.vals):
            a.flags.writeable = False

    @property
    def sealed(self) -> bool:
        return not self.vals.flags.writeable


class TierDay:
    """One UTC day of both rollup tiers.

    Per tier ``t`` (slots = buckets of ``TIER_MS[t]`` since the day's start):
    ``mm[t]`` float32 ``(columns, 2, slots)`` = (−min, max), −inf where empty (one max-reduction serves both);
    ``sc[t]`` float64 ``(columns, 2, slots)`` = (sum, count);
    ``rc[t]`` int64 ``(slots, 2)`` = (reports, reports with a task), for the activity report.
    Slots are the last axis and columns the first, so a fleet query concatenates a metric's slices
    cheaply and reduces over its columns along long contiguous rows (measured 3-10x faster than the
    other axis orders).
    """

    __slots__ = ("mm", "sc", "rc", "written", "gen")

    def __init__(self, width: int) -> None:
        # Tuples, not lists: a tuple of arrays is untracked by the cyclic collector after its first pass
        # (numpy arrays are not tracked), so a day costs the collector one object, not four.
        self.mm = tuple(np.full((width, 2, s), -np.inf, np.float32) for s in _SLOTS)
        self.sc = tuple(np.zeros((width, 2, s), np.float64) for s in _SLOTS)
        self.rc = tuple(np.zeros((s, 2), np.int64) for s in _SLOTS)
        self.written = -np.inf
        self.gen = 0  # as RawChunk.gen: copy before writing when older than the history's

    def thawed(self, gen: int) -> TierDay:
        """A private, writable copy of generation ``gen`` (copy-on-write after a freeze)."""
        out = TierDay.__new__(TierDay)
        out.mm = tuple(a.copy() for a in self.mm)
        out.sc = tuple(a.copy() for a in self.sc)
        out.rc = tuple(a.copy() for a in self.rc)
        out.written = self.written
        out.gen = gen
        return out

    @property
    def width(self) -> int:
        return self.mm[0].shape[0]

    def widen(self, width: int) -> None:
        """Add empty columns up to ``width`` (write path only: a sealed day is thawed first)."""
        old = self.width
        if width <= old:
            return
        if self.sealed:
            raise RuntimeError("a sealed tier day cannot be widened: thaw it first")
        mms, scs = [], []
        for t in range(len(TIER_MS)):
            mm = np.full((width, 2, _SLOTS[t]), -np.inf, np.float32)
            mm[:old] = self.mm[t]
            sc = np.zeros((width, 2, _SLOTS[t]), np.float64)
            sc[:old] = self.sc[t]
            mms.append(mm)
            scs.append(sc)
        self.mm, self.sc = tuple(mms), tuple(scs)

    def merge(
        self,
        slot0: int,
        cols: np.ndarray | slice,
        neg_min: np.ndarray,
        maxs: np.ndarray,
        sums: np.ndarray,
        counts: np.ndarray,
        rows: int,
        task_rows: int,
    ) -> None:
        """Merge a partial of one 10-min bucket (``slot0`` in tier 0) into every tier; ``cols``: distinct
        column numbers, or a slice of consecutive ones."""
        for t in range(len(TIER_MS)):
            s = slot0 * TIER_MS[0] // TIER_MS[t]
            mm, sc = self.mm[t], self.sc[t]
            mm[cols, 0, s] = np.maximum(mm[cols, 0, s], neg_min)
            mm[cols, 1, s] = np.maximum(mm[cols, 1, s], maxs)
            sc[cols, 0, s] += sums
            sc[cols, 1, s] += counts
            rc = self.rc[t]
            rc[s, 0] += rows
            rc[s, 1] += task_rows

    def counts(self) -> np.ndarray:
        """Records per column held by this day (the finest tier counts every record once)."""
        counts: np.ndarray = self.sc[0][:, 1].sum(axis=1)
        return counts

    def seal(self) -> None:
        """Make the arrays read-only: this day is now shared with a frozen cut."""
        for arrs in (self.mm, self.sc, self.rc):
            for a in arrs:
                a.flags.writeable = False

    @property
    def sealed(self) -> bool:
        return not self.rc[0].flags.writeable

