"""Fleet-wide query evaluation: every worker's plan (tier slices and raw rows) reduced in one numpy pass.

Each worker's :meth:`~.history.WorkerHistory.plan` yields parts in time order. Every part becomes rows of
partials keyed by a *group* ``worker_ordinal * K + query_bucket_index`` (nondecreasing over the whole
fleet), so one ``reduceat`` over the concatenation merges tier buckets, edge raw rows and all workers at
once; per-worker Python work is only the plan and slicing. Outputs are plain lists (``tolist`` once per
column, then list slices per worker), which orjson serializes at full speed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .columns import SERIES, TIER_MS, RawChunk
from .history import WorkerHistory

__all__ = ["fleet_stats", "fleet_activity"]

_HOUR = 3_600_000


def _base(lo: int, step: int) -> int:
    # Whole tier buckets below the horizon may start up to one tier bucket (≤ 1 h) before lo.
    return ((lo - _HOUR) // step) * step


def fleet_stats(
    histories: Sequence[tuple[str, WorkerHistory]],
    lo: int,
    hi: int,
    step: int,
    cols: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per (worker ordinal, bucket) rows: ``(worker, key_ms, neg_min, max, sum, count)``.

    ``neg_min``/``max`` float32 and ``sum``/``count`` float64 have shape ``(rows, 2?, len(cols))``:
    one column per requested series column; rows sorted by worker ordinal then key. Empty buckets of a
    column have count 0.
    """
    base = _base(lo, step)
    K = (hi - base) // step + 2
    ncols = len(cols)
    groups: list[np.ndarray] = []
    mms: list[np.ndarray] = []
    scs: list[np.ndarray] = []
    raw_groups: list[np.ndarray] = []
    raw_vals: list[np.ndarray] = []
    raw_at: list[int] = []  # position in mms where each raw block belongs (to keep group order)
    for w, (_wid, history) in enumerate(histories):
        offset = w * K
        for part in history.plan(lo, hi, step):
            if len(part) == 3:
                chunk, i, j = part  # type: ignore[misc]
                assert isinstance(chunk, RawChunk)
                vals = chunk.vals
                if cols[-1] >= vals.shape[1]:
                    block = np.full((j - i, ncols), np.nan, np.float32)
                    inside = cols < vals.shape[1]
                    block[:, inside] = vals[i:j][:, cols[inside]]
                else:
                    block = vals[i:j][:, cols]
                raw_vals.append(block)
                raw_groups.append((chunk.ts[i:j] - base) // step + offset)
                raw_at.append(len(mms))
                mms.append(None)  # type: ignore[arg-type]
                scs.append(None)  # type: ignore[arg-type]
                groups.append(None)  # type: ignore[arg-type]
            else:
                t, day, i, j, start = part  # type: ignore[misc]
                if cols[-1] >= day.width:
                    day.widen(len(SERIES))
                size = TIER_MS[t]
                mms.append(day.mm[t][i:j][:, :, cols])
                scs.append(day.sc[t][i:j][:, :, cols])
                groups.append((np.arange(start, start + (j - i) * size, size) - base) // step + offset)
    if not groups:
        empty = np.empty(0, np.int64)
        return empty, empty, *(np.empty((0, ncols)),) * 4  # type: ignore[return-value]
    if raw_vals:
        # All raw rows converted to partials in one go, then put back in their places.
        v = np.concatenate(raw_vals)
        present = ~np.isnan(v)
        mm = np.empty((len(v), 2, ncols), np.float32)
        np.negative(v, out=mm[:, 0, :])
        mm[:, 1, :] = v
        mm[~np.repeat(present[:, None, :], 2, axis=1)] = -np.inf
        sc = np.empty((len(v), 2, ncols), np.float64)
        sc[:, 0, :] = np.where(present, v, 0)
        sc[:, 1, :] = present
        at = 0
        for k, pos in enumerate(raw_at):
            n = len(raw_vals[k])
            mms[pos] = mm[at : at + n]
            scs[pos] = sc[at : at + n]
            groups[pos] = raw_groups[k]
            at += n
    g = np.concatenate(groups)
    mm = np.concatenate(mms)
    sc = np.concatenate(scs)
    starts = np.flatnonzero(np.concatenate(([True], g[1:] != g[:-1])))
    mm = np.maximum.reduceat(mm, starts, axis=0)
    sc = np.add.reduceat(sc, starts, axis=0)
    g = g[starts]
    worker = g // K
    keys = base + (g - worker * K) * step
    return worker, keys, mm[:, 0, :], mm[:, 1, :], sc[:, 0, :], sc[:, 1, :]


def render_stats(
    histories: Sequence[tuple[str, WorkerHistory]],
    lo: int,
    hi: int,
    step: int,
    aggregations: dict[str, list[str]],
    split: bool,
) -> list[dict[str, Any]]:
    """The get_stats ``workers`` list (see :func:`~.aggregate.stats_report` for the contract)."""
    cols = SERIES.columns_of(frozenset(aggregations))
    if not len(cols) or not histories:
        return []
    worker, keys, neg_min, maxs, sums, counts = fleet_stats(histories, lo, hi, step, cols)
    W = len(histories)
    keys_of = [SERIES.keys[c] for c in cols.tolist()]
    # one "series" per output entry: a column (split) or a metric's columns pooled
    series: list[tuple[str, str | None, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    if split:
        for k, (metric, variant) in enumerate(keys_of):
            series.append((metric, variant, neg_min[:, k], maxs[:, k], sums[:, k], counts[:, k]))
    else:
        by_metric: dict[str, list[int]] = {}
        for k, (metric, _v) in enumerate(keys_of):
            by_metric.setdefault(metric, []).append(k)
        for metric, ks in by_metric.items():
            if len(ks) == 1:
                k = ks[0]
                series.append((metric, None, neg_min[:, k], maxs[:, k], sums[:, k], counts[:, k]))
            else:
                series.append(
                    (
                        metric,
                        None,
                        neg_min[:, ks].max(axis=1),
                        maxs[:, ks].max(axis=1),
                        sums[:, ks].sum(axis=1),
                        counts[:, ks].sum(axis=1),
                    )
                )
    # per worker: list of (total, metric, variant, entry)
    entries: list[list[tuple[int, str, str, dict[str, Any]]]] = [[] for _ in range(W)]
    for metric, variant, nm, mx, sm, ct in series:
        keep = ct > 0
        if not keep.any():
            continue
        w_of = worker[keep]
        bounds = np.searchsorted(w_of, np.arange(W + 1)).tolist()
        totals = np.bincount(w_of, weights=ct[keep], minlength=W).astype(np.int64).tolist()
        dates = keys[keep].tolist()
        stats_lists: list[tuple[str, list[float]]] = []
        for agg in aggregations[metric]:
            if agg == "avg":
                vals = (sm[keep] / ct[keep]).tolist()
            elif agg == "min":
                vals = (-nm[keep]).astype(np.float64).tolist()
            else:
                vals = mx[keep].astype(np.float64).tolist()
            stats_lists.append((agg, vals))
        for w in np.flatnonzero(np.diff(bounds)).tolist():
            a, b = bounds[w], bounds[w + 1]
            entry: dict[str, Any] = {"metric": metric}
            if variant is not None:
                entry["variant"] = variant
            entry["dates"] = dates[a:b]
            entry["stats"] = [{"aggregation": agg, "values": vals[a:b]} for agg, vals in stats_lists]
            entries[w].append((totals[w], metric, variant or "", entry))
    out: list[tuple[int, str, list[dict[str, Any]]]] = []
    for w, items in enumerate(entries):
        if not items:
            continue
        per_metric: dict[str, int] = {}
        for total, metric, _v, _e in items:
            per_metric[metric] = per_metric.get(metric, 0) + total
        items.sort(key=lambda e: (-per_metric[e[1]], e[1], -e[0], e[2]))
        out.append((sum(per_metric.values()), histories[w][0], [e[3] for e in items]))
    out.sort(key=lambda x: (-x[0], x[1]))
    return [{"worker": wid, "metrics": metrics} for _, wid, metrics in out]


def fleet_activity(
    histories: Iterable[WorkerHistory], lo: int, hi: int, step: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bucket keys (ms, ascending, only buckets with any report) and, per bucket, the number of distinct
    workers with a report (``total``) and with a report that carried a task (``active``)."""
    base = _base(lo, step)
    K = (hi - base) // step + 2
    total = np.zeros(K, np.int64)
    active = np.zeros(K, np.int64)
    idx: list[np.ndarray] = []
    rep: list[np.ndarray] = []
    task: list[np.ndarray] = []
    w = 0
    for history in histories:
        parts = history.plan(lo, hi, step)
        if not parts:
            continue
        offset = w * K
        w += 1
        for part in parts:
            if len(part) == 3:
                chunk, i, j = part  # type: ignore[misc]
                ts = chunk.ts
                first = (int(ts[i]) - base) // step
                if first == (int(ts[j - 1]) - base) // step:  # the usual edge: one bucket
                    idx.append(np.array((first + offset,)))
                    rep.append(np.ones(1, np.bool_))
                    task.append(np.array((chunk.task[i:j].any(),)))
                else:
                    idx.append((ts[i:j] - base) // step + offset)
                    rep.append(np.ones(j - i, np.bool_))
                    task.append(chunk.task[i:j])
            else:
                t, day, i, j, start = part  # type: ignore[misc]
                size = TIER_MS[t]
                rc = day.rc[t][i:j]
                idx.append((np.arange(start, start + (j - i) * size, size) - base) // step + offset)
                rep.append(rc[:, 0] > 0)
                task.append(rc[:, 1] > 0)
    if idx:
        g = np.concatenate(idx)
        r = np.concatenate(rep)
        a = np.concatenate(task)
        starts = np.flatnonzero(np.concatenate(([True], g[1:] != g[:-1])))
        bucket = g[starts] % K
        total = np.bincount(bucket, weights=np.logical_or.reduceat(r, starts), minlength=K).astype(np.int64)
        active = np.bincount(bucket, weights=np.logical_or.reduceat(a, starts), minlength=K).astype(np.int64)
    keys = base + np.arange(K, dtype=np.int64) * step
    return keys, total, active
