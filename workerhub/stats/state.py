"""The persisted form of a :class:`~.history.WorkerHistory`: plain msgpack data, arrays as little-endian bytes.

Column numbers are per history (its :class:`~.series.SeriesLayout` grows in the order series first
arrive), so the file names its series: ``series`` lists the ``[metric, variant]`` pairs this history holds,
and every array in the state has exactly those columns, in that order. Loading keeps that order: the
restored history's layout is the ``series`` list.

Layout of :meth:`FrozenHistory.to_state` (``k`` = number of series; all arrays C-order, little-endian)::

    {"series":  [[metric, variant], ...],                          # k pairs
     "open":    start ms of the newest 10 min bucket seen,
     "pending": true when that bucket's rows are in raw only (not yet rolled up),
     "horizon": hours below it (ms) are answered from the tiers only,
     "chunks":  [[hour_ms, written_s, partial, ts int64 (n), task uint8 (n), vals float32 (n, k)], ...],
     "days":    [[day_ms, written_s, mm10 float32 (k, 2, 144), mm1h float32 (k, 2, 24),
                  sc10 float64 (k, 2, 144), sc1h float64 (k, 2, 24), rc10 int64 (144, 2), rc1h int64 (24, 2)], ...]}

``mm`` = (−min, max) with −inf in empty buckets, ``sc`` = (sum, count), ``rc`` = (reports, reports with a
task): the in-memory :class:`~.columns.TierDay` arrays. Per-series record counts are not stored: they are
the tiers' counts plus the pending bucket's rows, rebuilt on load.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import numpy as np

from .columns import DAY_MS, HOUR_MS, TIER_MS, RawChunk, TierDay

__all__ = ["FrozenHistory", "load_state"]

_SLOTS = tuple(DAY_MS // t for t in TIER_MS)
_LITTLE = sys.byteorder == "little"


def _bin(a: np.ndarray, dtype: str) -> memoryview:
    """Little-endian bytes of ``a``: a zero-copy view when ``a`` already is (the usual case)."""
    a = np.ascontiguousarray(a, dtype=np.dtype(dtype).newbyteorder("<"))
    return a.data.cast("B")


def _select(a: np.ndarray, used: np.ndarray, axis_width: int, fill: float) -> np.ndarray:
    """``a`` restricted to columns ``used`` along axis 0 (of ``a`` or of ``a.T`` for raw blocks), ``fill``
    for columns beyond ``a``'s width; ``a`` itself when it is already exactly those columns."""
    if axis_width == len(used) and (len(used) == 0 or used[-1] == len(used) - 1):
        return a
    inside = used < axis_width
    out = np.full((len(used),) + a.shape[1:], fill, a.dtype)
    out[inside] = a[used[inside]]
    return out


def _first(item: tuple[int, Any]) -> int:
    return item[0]


_Chunk = tuple[np.ndarray, np.ndarray, np.ndarray, int, float, bool]  # ts, task, vals, rows, written, partial
_Day = tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...], tuple[np.ndarray, ...], float]  # mm, sc, rc, written


class FrozenHistory:
    """A read-only view of a :class:`~.history.WorkerHistory` at one instant (from ``freeze()``).

    Immutable by construction: it keeps its own references to the *arrays* of the cut, never the chunk and
    day objects, so nothing done to the live history afterwards can reach it: a write copies an older
    generation's arrays before changing them, and a read that widens a chunk or a day rebinds the live
    object's attribute to a new array while this view keeps the old one. Safe to encode from a worker thread.
    """

    __slots__ = ("_chunks", "_days", "_horizon", "_keys", "_open", "_pending", "_sorted")

    def __init__(
        self,
        chunks: tuple[tuple[int, ...], tuple[RawChunk, ...]],
        days: tuple[tuple[int, ...], tuple[TierDay, ...]],
        open_ms: int,
        pending: bool,
        horizon: int,
        keys: tuple[tuple[str, str], ...],
    ) -> None:
        # Taken unsorted at the cut, which must be cheap; paired and sorted lazily, in the thread that encodes
        hours, raw = chunks
        starts, tiers = days
        self._chunks: Any = (hours, tuple([(c.ts, c.task, c.vals, c.n, c.written, c.partial) for c in raw]))
        self._days: Any = (starts, tuple([(tuple(d.mm), tuple(d.sc), tuple(d.rc), d.written) for d in tiers]))
        self._sorted = False
        self._open = open_ms
        self._pending = pending
        self._horizon = horizon
        self._keys = keys  # the history's series layout at the cut (immutable)

    def _sort(self) -> None:
        if not self._sorted:
            self._chunks = sorted(zip(*self._chunks), key=_first)
            self._days = sorted(zip(*self._days), key=_first)
            self._sorted = True

    def __len__(self) -> int:
        self._sort()
        return sum(c[3] for _hour, c in self._chunks)

    def _used(self) -> np.ndarray:
        """Columns that hold any record (raw or rolled up), ascending."""
        chunks: list[tuple[int, _Chunk]] = self._chunks
        days: list[tuple[int, _Day]] = self._days
        width = max([c[2].shape[1] for _h, c in chunks] + [d[0][0].shape[0] for _s, d in days] + [0])
        used = np.zeros(width, np.bool_)
        for _hour, (_ts, _task, vals, n, _w, _p) in chunks:
            used[: vals.shape[1]] |= ~np.isnan(vals[:n]).all(axis=0)
        for _start, (_mm, sc, _rc, _w) in days:
            used[: sc[0].shape[0]] |= sc[0][:, 1].sum(axis=1) > 0
        return np.flatnonzero(used)

    def to_state(self) -> dict[str, Any]:
        """The view as plain data (layout: module docstring). Byte fields may be zero-copy views of the
        frozen arrays: pack them (msgpack writes them as bin) before the view is dropped."""
        self._sort()
        used = self._used()
        keys = self._keys
        chunks = []
        for hour, (ts_a, task_a, vals_a, n, written, partial) in self._chunks:
            vals = _select(vals_a[:n].T, used, vals_a.shape[1], np.nan).T
            ts, task = _bin(ts_a[:n], "i8"), _bin(task_a[:n], "u1")
            chunks.append([hour, float(written), partial, ts, task, _bin(vals, "f4")])
        days = []
        for start, (mms, scs, rcs, written) in self._days:
            w = mms[0].shape[0]
            days.append(
                [start, float(written)]
                + [_bin(_select(mm, used, w, -np.inf), "f4") for mm in mms]
                + [_bin(_select(sc, used, w, 0.0), "f8") for sc in scs]
                + [_bin(rc, "i8") for rc in rcs]
            )
        return {
            "series": [list(keys[c]) for c in used.tolist()],
            "open": self._open,
            "pending": self._pending,
            "horizon": self._horizon,
            "chunks": chunks,
            "days": days,
        }


# Little-endian dtypes of the file's arrays (native on the usual hosts, so a view needs no byte swap).
_I8, _U1, _F4, _F8 = (np.dtype(t).newbyteorder("<") for t in ("i8", "u1", "f4", "f8"))
_BOOL_BYTES = b"\x00\x01"


def _array(raw: Any, dt: np.dtype, shape: tuple[int, ...] | None, what: str) -> np.ndarray:
    """A read-only native array of ``shape`` (None: 1-D, as long as ``raw`` holds) over little-endian
    bytes ``raw``; ValueError if the size is off.

    Zero-copy when ``raw`` is ``bytes`` (what msgpack decodes ``bin`` to): the array is a view of that
    object, which it keeps alive, and that object is the array's memory, one per array, so dropping the
    array frees it (nothing pins a bigger buffer). Any other buffer (a ``memoryview`` of a live array, a
    ``bytearray``) can change under the view, so it is copied once into ``bytes`` first.
    """
    if type(raw) is not bytes:
        if not isinstance(raw, (bytearray, memoryview)):
            raise ValueError(f"{what}: expected bytes, got {type(raw).__name__}")  # noqa: TRY004 - callers catch ValueError for any malformed state
        raw = bytes(raw)
    size = dt.itemsize
    if shape is None:
        shape = (len(raw) // size,)
    count = 1
    for dim in shape:
        count *= dim
    if len(raw) != count * size:
        raise ValueError(f"{what}: {len(raw)} bytes, expected {count * size} for shape {shape}")
    a = np.frombuffer(raw, dt)
    if not _LITTLE:
        a = a.astype(dt.newbyteorder("="))
        a.flags.writeable = False
    return a.reshape(shape)


def _task_flags(raw: Any, n: int, what: str) -> np.ndarray:
    """The task flags as a read-only bool view of ``raw`` (one byte per row, 0 or 1 as written); a byte
    other than 0 or 1 (never written, but it read as True before) is taken as True in a copy."""
    if isinstance(raw, (bytearray, memoryview)):
        raw = bytes(raw)  # as _array would: the view must not see a later change of the caller's buffer
    a = _array(raw, _U1, (n,), what)
    if raw.translate(None, _BOOL_BYTES):  # C speed: empty when every byte is 0 or 1
        flags = a.astype(np.bool_)
        flags.flags.writeable = False
        return flags
    return a.view(np.bool_)


def _loaded_day(mm: tuple[np.ndarray, ...], sc: tuple[np.ndarray, ...], rc: tuple[np.ndarray, ...],
                written: float) -> TierDay:
    """A sealed :class:`TierDay` over loaded arrays (its generation -1: older than any history's)."""
    day = TierDay.__new__(TierDay)
    day.mm, day.sc, day.rc = mm, sc, rc
    day.written = written
    day.gen = -1
    return day


def _int(v: Any, what: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise ValueError(f"{what} must be an integer, not {v!r}")  # noqa: TRY004 - callers catch ValueError for any malformed state
    return v


def load_state(
    state: Mapping[str, Any],
) -> tuple[list[tuple[int, RawChunk]], list[tuple[int, TierDay]], int, bool, int]:
    """Validate and decode :meth:`FrozenHistory.to_state` output into ``(chunks, days, open, pending,
    horizon)`` in the file's column order (its ``series`` list); raises ValueError naming what is malformed.

    The chunks and days come back **sealed**: their arrays are read-only views of the state's ``bytes``
    (see :func:`_array`: no copy), and their generation is -1, older than any history's, so the history
    copies one (``thawed``) before it first writes to it, exactly as after a snapshot cut. Nothing can
    write through them, so a loaded array never changes the bytes it was decoded from.
    """
    if not isinstance(state, Mapping) or not isinstance(state.get("series"), list):
        raise ValueError("history has no series list (a snapshot of another format?)")  # noqa: TRY004 - callers catch ValueError for any malformed state
    series = state["series"]
    names = [
        (p[0], p[1]) for p in series if type(p) is list and len(p) == 2 and type(p[0]) is str and type(p[1]) is str
    ]
    if len(names) != len(series):
        bad = next(p for p in series if not (isinstance(p, list) and len(p) == 2 and all(type(x) is str for x in p)))
        raise ValueError(f"bad series name {bad!r}")
    if len(set(names)) != len(names):
        raise ValueError("a series is named twice")
    k = len(names)
    open_ms = _int(state.get("open"), "open")
    horizon = _int(state.get("horizon"), "horizon")
    pending = state.get("pending")
    if not isinstance(pending, bool):
        raise ValueError(f"pending must be a boolean, not {pending!r}")  # noqa: TRY004 - callers catch ValueError for any malformed state
    chunks: list[tuple[int, RawChunk]] = []
    last = None
    isnan = np.isnan
    all_nan = b"\x01" * max(k, 1)
    for item in state.get("chunks", ()):
        hour, written, partial, ts_raw, task_raw, vals_raw = item
        hour = _int(hour, "chunk start")
        if hour % HOUR_MS or (last is not None and hour <= last):
            raise ValueError(f"chunk start {hour} not on an hour or out of order")
        last = hour
        try:  # the messages name the part; the chunk is named once, here (a string per chunk costs 5 %)
            ts = _array(ts_raw, _I8, None, "timestamps")
            n = len(ts)
            if n == 0 or ts[0] < hour or ts[-1] >= hour + HOUR_MS or (ts[1:] < ts[:-1]).any():
                raise ValueError("no rows, or rows out of order or outside the hour")
            task = _task_flags(task_raw, n, "task flags")
            vals = _array(vals_raw, _F4, (n, k), "values")
            nan = isnan(vals)
            # A row of k NaNs shows as k 1-bytes in a row; such a run can also straddle two rows, so only
            # its presence costs the exact (row-wise, 5x slower) check.
            if nan.tobytes().find(all_nan) >= 0 and nan.all(axis=1).any():
                raise ValueError("a row without values")
        except ValueError as exc:
            raise ValueError(f"chunk {hour}: {exc}") from None
        chunk = RawChunk.restore(ts, task, vals, float(written), bool(partial))
        chunk.gen = -1
        chunks.append((hour, chunk))
    days: list[tuple[int, TierDay]] = []
    t_n = len(TIER_MS)
    last = None
    for item in state.get("days", ()):
        start, written, *arrays = item
        start = _int(start, "day start")
        if start % DAY_MS or (last is not None and start <= last) or len(arrays) != 3 * t_n:
            raise ValueError(f"day {start}: not on a UTC day, out of order, or not {3 * t_n} arrays")
        last = start
        mm = tuple(_array(arrays[t], _F4, (k, 2, s), f"day {start} min/max") for t, s in enumerate(_SLOTS))
        sc = tuple(_array(arrays[t_n + t], _F8, (k, 2, s), f"day {start} sum/count") for t, s in enumerate(_SLOTS))
        rc = tuple(_array(arrays[2 * t_n + t], _I8, (s, 2), f"day {start} report counts") for t, s in enumerate(_SLOTS))
        if (sc[0][:, 1] < 0).any() or (rc[0] < 0).any():
            raise ValueError(f"day {start}: negative counts")
        days.append((start, _loaded_day(mm, sc, rc, float(written))))
    return chunks, days, open_ms, pending, horizon
