"""The get_stats answer: evaluated partials (:mod:`.query` or :mod:`.dense`) rendered as the wire's lists.

Outputs are plain lists (``tolist`` once per aggregation, then list slices per worker), which orjson
serializes at full speed. Rows are per worker and independent, so :mod:`.jobs` renders slices of workers
and orders all rows once at the end (:func:`order_rows`).
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from . import dense
from .history import WorkerHistory
from .pick import Picker
from .query import bucket_base, clamp_range, fleet_stats
from .series import SeriesKey

__all__ = ["WorkerRow", "order_rows", "query_keys", "stats_rows"]


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a large response is built.

    A get_stats response is millions of new floats in thousands of new lists and dicts: no cycles, nothing
    the collector could free. Yet each ~700 container allocations start a collection, and the older
    generations walk the whole heap (every history). That was 30 % of a split_by_variant query (measured).
    The previous state is restored, so a caller that disabled collection keeps it disabled.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


WorkerRow = tuple[int, str, list[dict[str, Any]]]
"""One worker of a get_stats answer: ``(record count, worker id, its metric entries in answer order)``."""


def stats_rows(
    histories: Sequence[tuple[str, WorkerHistory]],
    lo: int,
    hi: int,
    step: int,
    aggregations: dict[str, list[str]],
    split: bool,
    *,
    clamped: bool = False,
) -> list[WorkerRow]:
    """The answer rows of these workers, unordered (see :func:`~.aggregate.stats_report` for the
    contract). Workers are independent: rows of several calls over disjoint workers are merged by
    :func:`order_rows`, which is what lets a large query run in slices. ``clamped``: ``[lo, hi]`` is
    already narrowed (:func:`.query.clamp_range`, possibly over a larger fleet)."""
    with _gc_paused():
        return _render_stats(histories, lo, hi, step, aggregations, split, clamped)


def order_rows(rows: list[WorkerRow]) -> list[dict[str, Any]]:
    """The get_stats ``workers`` list: by record count descending, then worker id (Q9)."""
    rows.sort(key=lambda x: (-x[0], x[1]))
    return [{"worker": wid, "metrics": metrics} for _, wid, metrics in rows]


def _values(agg: str, parts: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], where: Any) -> list[float]:
    """One aggregation's values from partials ``(−min, max, sum, count)`` at ``where`` (count > 0 there)."""
    nm, mx, sm, ct = parts
    if agg == "avg":
        return (sm[where] / ct[where]).tolist()  # type: ignore[no-any-return]
    # float32 partials: tolist gives each value as a Python float (a double) exactly, no float64 copy needed
    if agg == "min":
        return (-nm[where]).tolist()  # type: ignore[no-any-return]
    return mx[where].tolist()  # type: ignore[no-any-return]


def query_keys(histories: Sequence[WorkerHistory], metrics: Iterable[str]) -> list[SeriesKey]:
    """The series of ``metrics`` some history holds, in first-seen order (once per distinct layout)."""
    wanted = frozenset(metrics)
    layouts = {id(h.layout): h.layout for h in histories}
    keys: dict[SeriesKey, None] = {}
    for layout in layouts.values():
        for key in layout.keys:
            if key[0] in wanted:
                keys[key] = None
    return list(keys)


def _render_stats(
    histories: Sequence[tuple[str, WorkerHistory]],
    lo: int,
    hi: int,
    step: int,
    aggregations: dict[str, list[str]],
    split: bool,
    clamped: bool,
) -> list[WorkerRow]:
    keys_of = query_keys([h for _id, h in histories], aggregations)
    if not keys_of or not histories:
        return []
    picker = Picker(keys_of)
    if not clamped:
        lo, hi = clamp_range((h for _id, h in histories), lo, hi)
    base = bucket_base(lo, step)
    W = len(histories)
    names: list[tuple[str, str | None]] = []
    pools: list[list[int]] = []
    if split:
        for k, key in enumerate(keys_of):
            names.append(key)
            pools.append([k])
    else:
        by_metric: dict[str, list[int]] = {}
        for k, (metric, _v) in enumerate(keys_of):
            by_metric.setdefault(metric, []).append(k)
        for name, ks in by_metric.items():
            names.append((name, None))
            pools.append(ks)
    entries: list[list[tuple[int, str, str, dict[str, Any]]]] = [[] for _ in range(W)]
    K = (hi - base) // step + 2
    lay = dense.layout([h for _w, h in histories], lo, hi, step, base, K, len(pools))
    if lay is not None:
        for (name, split_by), arrays in zip(names, dense.stats_dense(lay, lo, picker, pools)):
            _render_dense(entries, name, split_by, arrays, aggregations[name], base, step)
        return _rows(histories, entries)
    K, results = fleet_stats(histories, lo, hi, step, picker, pools)
    for (metric, variant), (g, partials) in zip(names, results):
        if not len(g):
            continue
        nm, mx, sm, ct = partials
        keep = ct > 0
        if not keep.any():
            continue
        parts = (nm, mx, sm, ct)
        g = g[keep]
        w_of = g // K
        bounds = np.searchsorted(w_of, np.arange(W + 1)).tolist()
        totals = np.bincount(w_of, weights=ct[keep], minlength=W).astype(np.int64).tolist()
        bucket = g - w_of * K
        lengths = np.diff(bounds)
        held = lengths[lengths > 0]
        shared = None
        if (held == held[0]).all() and (bucket.reshape(-1, held[0]) == bucket[: held[0]]).all():
            # every worker has the same buckets (the usual dashboard answer): one dates list for all of
            # them, as the dense path shares it (1.4 M ints fewer to make, and for the GC to walk, at 60 s)
            shared = (base + bucket[: held[0]] * step).tolist()
        else:
            dates = (base + bucket * step).tolist()
        stats_lists = [(agg, _values(agg, parts, keep)) for agg in aggregations[metric]]
        for w in np.flatnonzero(lengths).tolist():
            a, b = bounds[w], bounds[w + 1]
            entry: dict[str, Any] = {"metric": metric}
            if variant is not None:
                entry["variant"] = variant
            entry["dates"] = shared if shared is not None else dates[a:b]
            entry["stats"] = [{"aggregation": agg, "values": vals[a:b]} for agg, vals in stats_lists]
            entries[w].append((totals[w], metric, variant or "", entry))
    return _rows(histories, entries)


def _render_dense(
    entries: list[list[tuple[int, str, str, dict[str, Any]]]],
    metric: str,
    variant: str | None,
    arrays: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    aggs: list[str],
    base: int,
    step: int,
) -> None:
    """Append one output series' entries from dense ``(W, K)`` arrays (see :func:`.dense.stats_dense`)."""
    ct = arrays[3]
    keep = ct > 0
    ws = np.flatnonzero(keep.any(axis=1))
    if not len(ws):
        return
    totals = ct[ws].sum(axis=1).astype(np.int64).tolist()
    kk = keep[ws]
    if (kk == kk[0]).all():  # the usual case: every worker has the same buckets, one tolist per aggregation
        cidx = np.flatnonzero(kk[0])
        # One dates list shared by these entries (as the 2.32 grid shares its dates): nothing mutates an
        # answer, and a copy per entry was ~10 % of a split_by_variant query (copies, then the GC's pass).
        dates = (base + cidx * step).tolist()
        rows, cols = _run(ws, len(ct)), _run(cidx, ct.shape[1])
        both = isinstance(rows, np.ndarray) and isinstance(cols, np.ndarray)
        block = np.ix_(ws, cidx) if both else (rows, cols)  # slices take views; np.ix_ copies
        per_agg = [(agg, _values(agg, arrays, block)) for agg in aggs]
        for n, (w, total) in enumerate(zip(ws.tolist(), totals)):
            entry: dict[str, Any] = {"metric": metric}
            if variant is not None:
                entry["variant"] = variant
            entry["dates"] = dates
            entry["stats"] = [{"aggregation": agg, "values": vals[n]} for agg, vals in per_agg]
            entries[w].append((total, metric, variant or "", entry))
        return
    for w, total in zip(ws.tolist(), totals):
        cidx = np.flatnonzero(keep[w])
        entry = {"metric": metric}
        if variant is not None:
            entry["variant"] = variant
        entry["dates"] = (base + cidx * step).tolist()
        entry["stats"] = [{"aggregation": agg, "values": _values(agg, arrays, (w, cidx))} for agg in aggs]
        entries[w].append((total, metric, variant or "", entry))


def _run(idx: np.ndarray, n: int) -> Any:
    """``idx`` (ascending, unique, non-empty positions into an axis of length ``n``) as a slice when it is
    one run, so that indexing takes a view, not a copy; else ``idx`` itself."""
    first, last = int(idx[0]), int(idx[-1])
    if last - first + 1 == len(idx):
        return slice(first, last + 1) if len(idx) < n else slice(None)
    return idx


def _rows(
    histories: Sequence[tuple[str, WorkerHistory]], entries: list[list[tuple[int, str, str, dict[str, Any]]]]
) -> list[WorkerRow]:
    """Per worker with entries, its row; within a worker, metrics and variants by record count, then name
    (Q9). The workers themselves are ordered by :func:`order_rows`."""
    out: list[WorkerRow] = []
    for w, items in enumerate(entries):
        if not items:
            continue
        if len(items) == 1:
            out.append((items[0][0], histories[w][0], [items[0][3]]))
            continue
        per_metric: dict[str, int] = {}
        for total, metric, _v, _e in items:
            per_metric[metric] = per_metric.get(metric, 0) + total
        items.sort(key=lambda e: (-per_metric[e[1]], e[1], -e[0], e[2]))
        out.append((sum(per_metric.values()), histories[w][0], [e[3] for e in items]))
    return out
