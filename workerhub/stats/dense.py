"""The fleet fast path: one query's tier part and raw edges for many workers at once, as dense arrays.

The general path (:mod:`.query`) asks each worker for its :meth:`~.history.WorkerHistory.plan` and keys
every part by group ids; at 10,000 workers that per-worker Python (plan, chunk look-ups, searchsorted, one
numpy view per part) is most of the query. Here, in the usual case, the workers that share the same newest
10 min bucket share one decomposition of the range, computed once:

* ``[lo, a0)``: the partial 10 min bucket at the start, from raw rows (one hour's chunk per worker);
* ``[a0, b0)``: whole closed 10 min buckets, from the 10 min tier (gathered per day with one ``np.stack``);
* ``[b0, hi]``: the rest (the pending bucket, or the partial bucket at the end), from raw rows.

The raw edges are found by one mask over the concatenated timestamps of all workers' chunks, not by a
``searchsorted`` per worker. Results are dense ``(workers, K)`` arrays over the query's bucket grid.

Exactness is the plan's argument (docs/storage.md): tier 0 holds every record except the pending bucket's,
its buckets lie wholly inside one query bucket because 10 min divides the interval, and raw rows are
complete at and above the horizon. The fast path therefore applies only when the interval is a multiple of
10 min, every worker's horizon is at or below ``lo`` and the range holds at least one whole closed 10 min
bucket per worker; otherwise callers use the general path. This module reads the history's internals
(``_days``, ``_chunks``, ``_open``, ``_pending``, ``_horizon``): it is that class's query-side friend.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np

from .columns import DAY_MS, HOUR_MS, TIER_MS, RawChunk
from .history import WorkerHistory
from .pick import Picker, take

__all__ = ["Layout", "layout", "activity_flags", "stats_dense"]

_FINE = TIER_MS[0]
_LITTLE = sys.byteorder == "little"
_MAX_CELLS = 2_000_000
"""Above workers × buckets × output series this many cells (24 B each for get_stats), the dense arrays would
cost more memory than they save time: the general path answers."""


class Layout:
    """The shared decomposition of one query for groups of workers (ordinals into the fleet)."""

    __slots__ = ("W", "K", "base", "step", "groups")

    def __init__(self, W: int, K: int, base: int, step: int) -> None:
        self.W, self.K, self.base, self.step = W, K, base, step
        # (a0, b0, hi_raw, worker ordinals, histories)
        self.groups: list[tuple[int, int, int, np.ndarray, list[WorkerHistory]]] = []


def layout(
    histories: Sequence[WorkerHistory], lo: int, hi: int, step: int, base: int, K: int, series: int = 1
) -> Layout | None:
    """The fast-path layout of a query with ``series`` output series, or None when the general path must
    answer it."""
    W = len(histories)
    if step % _FINE or W * K * series > _MAX_CELLS or not W:
        return None
    by_open: dict[tuple[bool, int], list[int]] = {}
    for w, h in enumerate(histories):
        if h._horizon > lo:
            return None
        key = (h._pending, h._open)
        members = by_open.get(key)
        if members is None:
            by_open[key] = [w]
        else:
            members.append(w)
    a0 = -(-lo // _FINE) * _FINE
    out = Layout(W, K, base, step)
    for (pending, open_), ws in by_open.items():
        b0 = (hi + 1) // _FINE * _FINE
        if pending:
            b0 = min(b0, open_)
        if a0 >= b0:
            return None
        # No row lies beyond the newest bucket seen, so the end edge is at most one 10 min bucket.
        hi_raw = min(hi, open_ + _FINE - 1)
        out.groups.append((a0, b0, hi_raw, np.array(ws, np.int64), [histories[w] for w in ws]))
    return out


def _tier_days(a0: int, b0: int) -> list[tuple[int, int, int]]:
    """(day start, first slot, end slot) of tier 0 covering ``[a0, b0)`` (both 10 min aligned)."""
    out = []
    for d in range(a0 - a0 % DAY_MS, b0, DAY_MS):
        i = max(a0 - d, 0) // _FINE
        j = min(b0 - d, DAY_MS) // _FINE
        if i < j:
            out.append((d, i, j))
    return out


def _joined(arrays: list[np.ndarray], dtype: type[np.generic]) -> np.ndarray:
    """The C-contiguous ``arrays`` of ``dtype`` as one flat array. Joining their buffers costs half of
    ``np.concatenate`` over thousands of small arrays (one per worker); the result is read-only. Stored
    arrays are native or little-endian (loaded files), the same bytes on a little-endian machine only."""
    if _LITTLE:
        try:
            return np.frombuffer(b"".join(arrays), dtype)  # type: ignore[arg-type]  # ndarray is a buffer
        except BufferError:  # a non-contiguous array (none is made so today): the general way
            pass
    return np.concatenate([a.ravel() for a in arrays]).astype(dtype, copy=False)


def _edge_rows(
    hs: list[WorkerHistory], ea: int, eb: int, with_task: bool = False
) -> tuple[list[RawChunk | None], np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Rows with ``ea <= ts <= eb`` (inside one hour) of every worker, found with one mask over all
    workers' timestamps: the chunks (None where absent) and, for the workers that have such rows, the row
    slice ``[i, j)``, the ordinal into ``hs`` and (``with_task``) whether one of the rows carried a task."""
    hour = ea - ea % HOUR_MS
    chunks = [h._chunks.get(hour) for h in hs]
    idx = [k for k, c in enumerate(chunks) if c is not None and c.n]
    e = np.empty(0, np.int64)
    if not idx:
        return chunks, e, e, e, None
    got = [chunks[k] for k in idx]
    # Whole arrays, spare capacity included (only a chunk still being written has any), the rows past ``n``
    # masked out below: slicing each to ``n`` costs one numpy view per worker, most of this function's time
    # at 10,000 workers.
    tss = [c.ts for c in got]
    caps = np.fromiter(map(len, tss), np.int64, len(got))
    ns = np.fromiter((c.n for c in got), np.int64, len(got))
    ts = _joined(tss, np.int64)
    starts = np.concatenate(([0], np.cumsum(caps)[:-1]))
    below_ea = ts < ea
    inside = ~below_ea & (ts <= eb)
    spare = caps != ns
    if spare.any():
        valid = np.arange(len(ts)) - np.repeat(starts, caps) < np.repeat(ns, caps)
        below_ea &= valid
        inside &= valid
    # rows of one chunk are ascending, so the rows inside are one run per chunk: [below, below + count)
    below = np.add.reduceat(below_ea.view(np.int8), starts, dtype=np.int64)
    count = np.add.reduceat(inside.view(np.int8), starts, dtype=np.int64)
    has = count > 0
    task = None
    if with_task:
        tk = _joined([c.task for c in got], np.bool_)
        task = np.logical_or.reduceat(inside & tk, starts)[has]
    return chunks, below[has], (below + count)[has], np.array(idx, np.int64)[has], task


def _cells(
    ws: np.ndarray, have: list[int], n: int, d: int, i: int, j: int, base: int, step: int
) -> tuple[np.ndarray | slice, slice, np.ndarray | None]:
    """Where tier 0 slots ``[i, j)`` of day ``d`` land in the dense arrays: the worker rows, the (consecutive)
    query buckets, and the ``reduceat`` starts merging slots that share a bucket (None when one slot each)."""
    bucket = (d + np.arange(i, j, dtype=np.int64) * _FINE - base) // step
    starts = None
    if step != _FINE:
        starts = np.flatnonzero(np.concatenate(([True], bucket[1:] != bucket[:-1])))
    rows: np.ndarray | slice
    if len(have) == len(ws) == n:  # every worker of the fleet (ordinals ascending): all rows
        rows = slice(None)
    else:
        rows = ws[have]
    return rows, slice(int(bucket[0]), int(bucket[-1]) + 1), starts


def activity_flags(lay: Layout, lo: int) -> np.ndarray:
    """``(2, W, K)`` bool: worker reported in bucket / reported with a task."""
    W, K, base, step = lay.W, lay.K, lay.base, lay.step
    flags = np.zeros((2, W, K), np.bool_)
    for a0, b0, hi_raw, ws, hs in lay.groups:
        for d, i, j in _tier_days(a0, b0):
            days = [h._days.get(d) for h in hs]
            have = [k for k, day in enumerate(days) if day is not None]
            if not have:
                continue
            rc = _joined([days[k].rc[0] for k in have], np.int64).reshape(len(have), -1, 2)[:, i:j]
            rows, bsl, starts = _cells(ws, have, W, d, i, j, base, step)
            rep = rc[:, :, 0] > 0
            tsk = rc[:, :, 1] > 0
            if starts is not None:  # several slots share a query bucket
                rep = np.logical_or.reduceat(rep, starts, axis=1)
                tsk = np.logical_or.reduceat(tsk, starts, axis=1)
            flags[0][rows, bsl] |= rep
            flags[1][rows, bsl] |= tsk
        for ea, eb in ((lo, a0 - 1), (b0, hi_raw)):
            if ea > eb:
                continue
            _chunks, _i, _j, idx, task = _edge_rows(hs, ea, eb, with_task=True)
            if not len(idx):
                continue
            b = (ea - base) // step  # the edge lies inside one 10 min bucket, so inside one query bucket
            flags[0, ws[idx], b] = True
            flags[1, ws[idx[task]], b] = True
    return flags


def stats_dense(
    lay: Layout, lo: int, picker: Picker, pools: list[list[int]]
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Per pool, dense ``(W, K)`` arrays (−min, max as float32; sum, count as float64); count 0 = empty.
    Columns a worker's arrays lack read as absent (:mod:`.pick`): nothing is widened."""
    W, K, base, step = lay.W, lay.K, lay.base, lay.step
    nc = len(picker.keys)
    out = []
    for _ in pools:
        nm = np.full((W, K), -np.inf, np.float32)
        out.append((nm, nm.copy(), np.zeros((W, K)), np.zeros((W, K))))
    every = list(range(nc))
    for a0, b0, hi_raw, ws, hs in lay.groups:
        for d, i, j in _tier_days(a0, b0):
            days = [h._days.get(d) for h in hs]
            have = [k for k, day in enumerate(days) if day is not None]
            if not have:
                continue
            got = [days[k] for k in have]
            picks = [picker.pick(hs[k].layout, day.width) for k, day in zip(have, got)]
            rows, bsl, starts = _cells(ws, have, W, d, i, j, base, step)
            if len(pools) == 1 and pools[0] == every and len(every) > 1:
                # One pooled metric: reduce each worker's columns straight into a small array. That reads the
                # tier slices once; concatenating them first would copy ~27 kB per worker (it is memory bound).
                MM: np.ndarray = np.empty((len(got), 2, j - i), np.float32)
                SC: np.ndarray = np.empty((len(got), 2, j - i))
                for k, (day, pk) in enumerate(zip(got, picks)):
                    # the pool is every column: absent ones add nothing, so reduce over the present ones
                    idx = pk.index if pk.index is not None else pk.src
                    if len(pk.src):
                        np.maximum.reduce(day.mm[0][idx, :, i:j], axis=0, out=MM[k])
                        np.add.reduce(day.sc[0][idx, :, i:j], axis=0, out=SC[k])
                    else:
                        MM[k] = -np.inf
                        SC[k] = 0.0
                pooled = [(MM, SC)]
            else:
                # (workers, columns, 2, slots); concatenate + reshape: np.stack costs ~1 µs of Python per array
                mms = [take(day.mm[0][:, :, i:j], pk, -np.inf) for day, pk in zip(got, picks)]
                scs = [take(day.sc[0][:, :, i:j], pk, 0.0) for day, pk in zip(got, picks)]
                MM = np.concatenate(mms).reshape(len(got), nc, 2, j - i)
                SC = np.concatenate(scs).reshape(len(got), nc, 2, j - i)
                pooled = []
            for pool, (nm, mx, sm, ct) in zip(pools, out):
                if pooled:
                    m, s = pooled[0]
                elif len(pool) == 1:
                    m, s = MM[:, pool[0]], SC[:, pool[0]]
                else:
                    m = (MM if pool == every else MM[:, pool]).max(axis=1)
                    s = (SC if pool == every else SC[:, pool]).sum(axis=1)
                if starts is not None:
                    m = np.maximum.reduceat(m, starts, axis=2)
                    s = np.add.reduceat(s, starts, axis=2)
                nm[rows, bsl] = np.maximum(nm[rows, bsl], m[:, 0])
                mx[rows, bsl] = np.maximum(mx[rows, bsl], m[:, 1])
                sm[rows, bsl] += s[:, 0]
                ct[rows, bsl] += s[:, 1]
        for ea, eb in ((lo, a0 - 1), (b0, hi_raw)):
            if ea > eb:
                continue
            chunks, i_s, j_s, idx, _t = _edge_rows(hs, ea, eb)
            if not len(idx):
                continue
            parts = []
            for k, i, j in zip(idx.tolist(), i_s.tolist(), j_s.tolist()):
                chunk = chunks[k]
                assert chunk is not None
                parts.append(take(chunk.vals[i:j], picker.pick(hs[k].layout, chunk.width), np.nan, axis=1))
            V = np.concatenate(parts)  # (rows, columns)
            starts = np.concatenate(([0], np.cumsum(j_s - i_s)[:-1]))
            b = (ea - base) // step  # the edge lies inside one 10 min bucket, so inside one query bucket
            rows = ws[idx]
            for pool, (nm, mx, sm, ct) in zip(pools, out):
                v = V[:, pool]
                present = ~np.isnan(v)
                lo_v = np.fmin.reduce(v, axis=1)
                hi_v = np.fmax.reduce(v, axis=1)
                s = np.where(present, v, 0).sum(axis=1, dtype=np.float64)
                c = present.sum(axis=1).astype(np.float64)
                # per worker: reduce its rows (NaN where none of the pool's columns is present)
                nm[rows, b] = np.fmax(nm[rows, b], -np.fmin.reduceat(lo_v, starts))
                mx[rows, b] = np.fmax(mx[rows, b], np.fmax.reduceat(hi_v, starts))
                sm[rows, b] += np.add.reduceat(s, starts)
                ct[rows, b] += np.add.reduceat(c, starts)
    return out
