"""Fleet-wide query evaluation (numpy): every worker's plan (tier slices and raw rows) reduced in one numpy pass.

Each worker's :meth:`~.history.WorkerHistory.plan` yields parts in time order. Every part becomes rows of
partials keyed by a *group* ``worker_ordinal * K + query_bucket_index`` (nondecreasing over the whole
fleet), so one ``reduceat`` over the concatenation merges tier buckets, edge raw rows and all workers at
once; per-worker Python work is only the plan and slicing. Outputs are plain lists (``tolist`` once per
column, then list slices per worker); :mod:`.render` turns them into the wire answer.

That is the *general* path. When the interval is a multiple of 10 min and every worker's raw rows are
complete over the range (the usual dashboard query), :mod:`.dense` answers instead, without a per-worker
plan, into dense ``(workers, buckets)`` arrays.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from . import dense
from .columns import TIER_MS
from .history import RawPart, WorkerHistory
from .pick import Picker, take

__all__ = ["bucket_base", "clamp_range", "fleet_activity", "fleet_stats"]

_HOUR = 3_600_000


def bucket_base(lo: int, step: int) -> int:
    # Whole tier buckets below the horizon may start up to one tier bucket (≤ 1 h) before lo.
    return ((lo - _HOUR) // step) * step


def clamp_range(histories: Iterable[WorkerHistory], lo: int, hi: int) -> tuple[int, int]:
    """``[lo, hi]`` narrowed to the hours and days the fleet holds data in (hour-aligned ends, so every
    bucket and plan keeps its answer). Keeps group ids ``worker * K + bucket`` small: a query over the
    whole int64 range at a 1 s interval would otherwise overflow them, or allocate per empty bucket."""
    exts = [e for e in (h.extent() for h in histories) if e is not None]
    if not exts:
        return lo, hi
    first, last = min(e[0] for e in exts), max(e[1] for e in exts)
    lo2, hi2 = max(lo, first), min(hi, last)
    return (lo2, hi2) if lo2 <= hi2 else (lo, lo)


def _ramp(
    starts: list[int], lengths: list[int], sizes: list[int], offsets: list[int], base: int, step: int
) -> np.ndarray:
    """Group ids of consecutive tier slots: part ``k`` has ``lengths[k]`` slots of ``sizes[k]`` ms from
    ``starts[k]``."""
    if len(set(lengths)) == 1 and len(set(sizes)) == 1:  # the usual case: a broadcast, no repeats
        ramp = np.arange(lengths[0], dtype=np.int64) * sizes[0]
        first = np.array(starts, np.int64) - base
        ids: np.ndarray = ((first[:, None] + ramp) // step + np.array(offsets, np.int64)[:, None]).ravel()
        return ids
    n = np.array(lengths)
    pos = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
    slot_start = np.repeat(np.array(starts, np.int64), n) + pos * np.repeat(np.array(sizes, np.int64), n)
    out: np.ndarray = (slot_start - base) // step + np.repeat(np.array(offsets, np.int64), n)
    return out


def _rows_of(a: np.ndarray, pool: list[int], every: list[int]) -> np.ndarray:
    """Rows ``pool`` of ``a`` (axis 0): ``a`` itself or a view when they are all or one ascending run,
    else a copy."""
    if pool == every:
        return a
    if pool == list(range(pool[0], pool[0] + len(pool))):
        return a[pool[0] : pool[0] + len(pool)]
    return a[pool]


def _merge_sorted(
    g1: np.ndarray, a1: list[np.ndarray], g2: np.ndarray, a2: list[np.ndarray]
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Union of two partial sets, each with unique ascending groups: (−min, max, sum, count) combined."""
    if not len(g2):
        return g1, a1
    if not len(g1):
        return g2, a2
    g = np.concatenate((g1, g2))
    order = np.argsort(g, kind="stable")  # two sorted runs: a linear merge
    g = g[order]
    arrs = [np.concatenate((x, y))[order] for x, y in zip(a1, a2)]
    dup = np.flatnonzero(g[1:] == g[:-1])  # at most two entries per group
    if len(dup):
        nxt = dup + 1
        for k, arr in enumerate(arrs):
            arr[dup] = np.fmax(arr[dup], arr[nxt]) if k < 2 else arr[dup] + arr[nxt]
        keep = np.ones(len(g), np.bool_)
        keep[nxt] = False
        g = g[keep]
        arrs = [arr[keep] for arr in arrs]
    return g, arrs


def _reduce_groups(g: np.ndarray, arrs: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Combine rows of equal (adjacent) group ids; a no-op when the groups are already unique."""
    if not len(g):
        return g, arrs
    change = g[1:] != g[:-1]
    if change.all():
        return g, arrs
    starts = np.flatnonzero(np.concatenate(([True], change)))
    out = [np.fmax.reduceat(a, starts) if k < 2 else np.add.reduceat(a, starts) for k, a in enumerate(arrs)]
    return g[starts], out


def fleet_stats(
    histories: Sequence[tuple[str, WorkerHistory]],
    lo: int,
    hi: int,
    step: int,
    picker: Picker,
    pools: list[list[int]],
) -> tuple[int, list[tuple[np.ndarray, list[np.ndarray]]]]:
    """Per output series (a *pool*: positions into ``picker.keys`` whose values are aggregated together) the
    group ids ``worker_ordinal * K + bucket`` (ascending, unique) and ``[−min, max, sum, count]`` arrays.
    Columns a worker's arrays lack read as absent (:mod:`.pick`): nothing is widened.

    Returns ``K`` and one ``(groups, arrays)`` per pool; a group with count 0 holds no record.
    """
    base = bucket_base(lo, step)
    K = (hi - base) // step + 2
    t_mm: list[np.ndarray] = []
    t_sc: list[np.ndarray] = []
    t_start: list[int] = []
    t_len: list[int] = []
    t_size: list[int] = []
    t_off: list[int] = []
    r_vals: list[np.ndarray] = []  # (columns, rows) views: one strided copy into V below
    r_ts: list[np.ndarray] = []
    r_len: list[int] = []
    r_off: list[int] = []
    raw_key: tuple[object, int] = (None, -1)
    raw_pick = None
    for w, (_wid, history) in enumerate(histories):
        offset = w * K
        layout = history.layout
        for part in history.plan(lo, hi, step):
            if isinstance(part, RawPart):
                chunk, i, j = part
                vals = chunk.vals
                # a worker's chunks (and most workers) share one layout and width: pick once per change, as
                # at 60 s a query reads ~24 chunks per worker
                if raw_key[0] is not layout or raw_key[1] != vals.shape[1]:
                    raw_key = (layout, vals.shape[1])
                    raw_pick = picker.pick(layout, vals.shape[1])
                assert raw_pick is not None
                if raw_pick.index is not None:
                    r_vals.append(vals[i:j, raw_pick.index].T)
                else:
                    r_vals.append(take(vals[i:j], raw_pick, np.nan, axis=1).T)
                r_ts.append(chunk.ts[i:j])
                r_len.append(j - i)
                r_off.append(offset)
            else:
                t, day, i, j, start = part
                pk = picker.pick(layout, day.width)
                t_mm.append(take(day.mm[t][:, :, i:j], pk, -np.inf))
                t_sc.append(take(day.sc[t][:, :, i:j], pk, 0.0))
                t_start.append(start)
                t_len.append(j - i)
                t_size.append(TIER_MS[t])
                t_off.append(offset)
    results: list[tuple[np.ndarray, list[np.ndarray]]] = []
    empty = np.empty(0, np.int64)
    if t_mm:
        g_t = _ramp(t_start, t_len, t_size, t_off, base, step)
        MM = np.concatenate(t_mm, axis=2)  # (columns, 2, slots)
        SC = np.concatenate(t_sc, axis=2)
    if r_vals:
        # (columns, rows): concatenating the transposed views copies once (a concatenate, then a transposing
        # copy, moved every raw value twice: the 60 s query reads the whole day from raw rows)
        V = np.concatenate(r_vals, axis=1, out=np.empty((len(picker.keys), sum(r_len)), np.float32))  # C order
        g_r = (np.concatenate(r_ts) - base) // step + np.repeat(np.array(r_off, np.int64), r_len)
    every = list(range(len(picker.keys)))
    for pool in pools:
        one = len(pool) == 1
        if t_mm:
            if one:
                tier = [MM[pool[0], 0], MM[pool[0], 1], SC[pool[0], 0], SC[pool[0], 1]]
            else:
                mx = _rows_of(MM, pool, every).max(axis=0)
                sm = _rows_of(SC, pool, every).sum(axis=0)
                tier = [mx[0], mx[1], sm[0], sm[1]]
            gt, tier = _reduce_groups(g_t, tier)
        else:
            gt, tier = empty, []
        if r_vals:
            if one:
                v = V[pool[0]]
                present = ~np.isnan(v)
                raw = [-v, v, np.where(present, v, 0).astype(np.float64), present.astype(np.float64)]
            else:
                v = _rows_of(V, pool, every)
                # Sum as is: a row with an absent value (NaN) sums to NaN. Only those rows (usually none: a
                # report carries all of a metric's variants) are summed and counted again, without the NaNs;
                # a mask and a count over every value cost as much as the sum.
                n = len(pool)
                total = np.add.reduce(v, axis=0, dtype=np.float64)
                count = np.full(len(total), float(n))
                gaps = np.flatnonzero(np.isnan(total))
                if len(gaps):
                    vg = v[:, gaps]
                    absent = np.isnan(vg)
                    total[gaps] = np.add.reduce(np.where(absent, 0, vg), axis=0, dtype=np.float64)
                    count[gaps] = n - absent.sum(axis=0)
                raw = [-np.fmin.reduce(v, axis=0), np.fmax.reduce(v, axis=0), total, count]
            gr, raw = _reduce_groups(g_r, raw)
        else:
            gr, raw = empty, []
        results.append(_merge_sorted(gt, tier, gr, raw))
    return K, results


def fleet_activity(
    histories: Iterable[WorkerHistory], lo: int, hi: int, step: int, *, clamped: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bucket keys (ms, ascending) and, per bucket, the number of distinct workers with a report (``total``)
    and with a report that carried a task (``active``). The dense path answers every bucket of the grid
    (zeros included); the general one only the non-empty buckets, so a wide range at a small interval
    costs nothing per empty bucket. Callers treat both alike. ``clamped``: ``[lo, hi]`` is already narrowed
    (:func:`clamp_range`, possibly over a larger fleet)."""
    histories = list(histories)
    if not clamped:
        lo, hi = clamp_range(histories, lo, hi)
    base = bucket_base(lo, step)
    K = (hi - base) // step + 2
    lay = dense.layout(histories, lo, hi, step, base, K)
    if lay is not None:  # bounded: the dense layout refuses grids beyond its cell budget
        counts = dense.activity_flags(lay, lo).sum(axis=1)
        return base + np.arange(K, dtype=np.int64) * step, counts[0], counts[1]
    t_rc: list[np.ndarray] = []
    t_start: list[int] = []
    t_len: list[int] = []
    t_size: list[int] = []
    t_off: list[int] = []
    r_g: list[int] = []  # raw parts inside one bucket (the usual edges): one flag each
    r_task: list[bool] = []
    x_g: list[np.ndarray] = []  # raw parts spanning buckets
    x_task: list[np.ndarray] = []
    w = 0
    for history in histories:
        parts = history.plan(lo, hi, step)
        if not parts:
            continue
        offset = w * K
        w += 1
        for part in parts:
            if isinstance(part, RawPart):
                chunk, i, j = part
                ts = chunk.ts
                first = (int(ts[i]) - base) // step
                if first == (int(ts[j - 1]) - base) // step:
                    r_g.append(first + offset)
                    r_task.append(b"\x01" in chunk.task[i:j].tobytes())  # 5x cheaper than .any() here
                else:
                    x_g.append((ts[i:j] - base) // step + offset)
                    x_task.append(chunk.task[i:j])
            else:
                t, day, i, j, start = part
                t_rc.append(day.rc[t][i:j])
                t_start.append(start)
                t_len.append(j - i)
                t_size.append(TIER_MS[t])
                t_off.append(offset)
    g_parts: list[np.ndarray] = []
    rep_parts: list[np.ndarray] = []
    task_parts: list[np.ndarray] = []
    if t_rc:
        rc = np.concatenate(t_rc)
        g_parts.append(_ramp(t_start, t_len, t_size, t_off, base, step))
        rep_parts.append(rc[:, 0] > 0)
        task_parts.append(rc[:, 1] > 0)
    if r_g:
        g_parts.append(np.array(r_g, np.int64))
        rep_parts.append(np.ones(len(r_g), np.bool_))
        task_parts.append(np.array(r_task, np.bool_))
    if x_g:
        g_parts.append(np.concatenate(x_g))
        rep_parts.append(np.ones(sum(map(len, x_g)), np.bool_))
        task_parts.append(np.concatenate(x_task))
    if not g_parts:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64)
    g = np.concatenate(g_parts)
    rep = np.concatenate(rep_parts)
    task = np.concatenate(task_parts)
    # distinct (worker, bucket) pairs with a report / with a task, counted per bucket; sparse (only the
    # non-empty buckets), so a wide range at a small interval costs nothing per empty bucket
    buckets, total = np.unique(np.unique(g[rep]) % K, return_counts=True)
    with_task, n_task = np.unique(np.unique(g[task]) % K, return_counts=True)
    active = np.zeros(len(buckets), np.int64)
    active[np.searchsorted(buckets, with_task)] = n_task  # a report with a task is a report
    return base + buckets * step, total, active
