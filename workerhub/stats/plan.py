"""Query planning: which parts of one worker's history (tier slots, raw rows) answer a range at an interval.

:func:`plan` is the general path's per-worker step (:mod:`.query`); :func:`raw_parts` also serves the raw
reads of :class:`~.history.WorkerHistory`. Which data answers which query, and why it is exact:
docs/storage.md. Like :mod:`.dense`, this module reads the history's internals (``_chunks``, ``_days``,
``_open``, ``_pending``, ``_horizon``): it is that class's query-side friend, and it only reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Protocol

from .columns import DAY_MS, HOUR_MS, TIER_MS, RawChunk, TierDay

if TYPE_CHECKING:
    from .history import WorkerHistory

__all__ = ["RawPart", "TierPart", "plan", "raw_parts"]


class TierPart(NamedTuple):
    """Slots ``[i, j)`` of tier ``tier`` in ``day``; slot ``i`` starts at ``start`` (ms)."""

    tier: int
    day: TierDay
    i: int
    j: int
    start: int


class RawPart(NamedTuple):
    """Rows ``[i, j)`` of a raw chunk."""

    chunk: RawChunk
    i: int
    j: int


class _RawSink(Protocol):
    def append(self, item: RawPart, /) -> None: ...


def raw_parts(h: WorkerHistory, lo_ms: int, hi_ms: int, out: _RawSink) -> None:
    """Append the raw rows of ``[lo_ms, hi_ms]`` to ``out``, one part per chunk, in time order."""
    chunks = h._chunks
    first = lo_ms - lo_ms % HOUR_MS
    if hi_ms < first + HOUR_MS:  # inside one chunk: the usual edge, kept cheap
        chunk = chunks.get(first)
        if chunk is not None:
            ts = chunk.ts[: chunk.n]
            i = 0 if lo_ms == first else int(ts.searchsorted(lo_ms))
            j = chunk.n if hi_ms == first + HOUR_MS - 1 else int(ts.searchsorted(hi_ms, "right"))
            if i < j:
                out.append(RawPart(chunk, i, j))
        return
    if hi_ms - first < 4 * HOUR_MS:  # edges: a dict look-up per hour beats SortedDict.irange
        starts = [h for h in range(first, hi_ms + 1, HOUR_MS) if h in chunks]
    else:
        starts = list(chunks.irange(first, hi_ms))
    for start in starts:
        chunk = chunks[start]
        if start >= lo_ms and start + HOUR_MS <= hi_ms:
            i, j = 0, chunk.n
        else:
            i, j = chunk.span(lo_ms, hi_ms)
        if i < j:
            out.append(RawPart(chunk, i, j))


def plan(h: WorkerHistory, lo_ms: int, hi_ms: int, step_ms: int) -> list[TierPart | RawPart]:
    """The parts that answer a query over ``[lo_ms, hi_ms]`` at ``step_ms`` buckets, in time order.

    Coarsest tier whose bucket divides ``step_ms``, for the tier buckets that lie wholly inside the
    range and hold no pending row; finer tier buckets (10 min) for whole buckets around them; raw rows
    for the rest (partial 10 min buckets at the ends, the pending bucket). Hours below the horizon:
    that tier's (or, when no tier divides ``step_ms``, the 10 min tier's) buckets overlapping the
    range, whole.
    """
    t = 1 if step_ms % TIER_MS[1] == 0 else 0 if step_ms % TIER_MS[0] == 0 else -1
    out: list[TierPart | RawPart] = []
    lo = lo_ms
    if lo < h._horizon:
        tt = max(t, 0)
        size = TIER_MS[tt]
        _tiers(h, tt, lo - lo % size, min(hi_ms, h._horizon - 1) + 1, out)
        lo = h._horizon
    if lo > hi_ms:
        return out
    if t < 0:
        raw_parts(h, lo, hi_ms, out)
        return out
    # Cascade from coarse to fine: whole 1 h buckets in the middle, whole 10 min buckets around them,
    # raw rows only for the partial 10 min buckets at the ends and the pending bucket.
    fine = TIER_MS[0]
    a0 = -(-lo // fine) * fine
    b0 = (hi_ms + 1) // fine * fine
    if h._pending:
        b0 = min(b0, h._open)
    if a0 >= b0:
        raw_parts(h, lo, hi_ms, out)
        return out
    if lo < a0:
        raw_parts(h, lo, a0 - 1, out)
    a1 = b1 = a0
    if t == 1:
        size = TIER_MS[1]
        a1 = -(-lo // size) * size
        b1 = (hi_ms + 1) // size * size
        if h._pending:
            b1 = min(b1, h._open - h._open % size)
        if a1 >= b1:
            a1 = b1 = b0
    if a0 < a1:
        _tiers(h, 0, a0, a1, out)
    if a1 < b1:
        _tiers(h, 1, a1, b1, out)
    if b1 < b0:
        _tiers(h, 0, b1, b0, out)
    if b0 <= hi_ms:
        raw_parts(h, b0, hi_ms, out)
    return out

def _tiers(h: WorkerHistory, t: int, a: int, b: int, out: list[TierPart | RawPart]) -> None:
    """Tier ``t`` slices for bucket starts in ``[a, b)`` (``a`` aligned to the tier)."""
    size = TIER_MS[t]
    days = h._days
    first = a - a % DAY_MS
    if b - first <= 32 * DAY_MS:
        starts = [d for d in range(first, b, DAY_MS) if d in days]
    else:
        starts = list(days.irange(first, b - 1))
    for start in starts:
        i = max(a - start, 0) // size
        j = (min(b - start, DAY_MS) + size - 1) // size
        if i < j:
            out.append(TierPart(t, days[start], i, j, start + i * size))
