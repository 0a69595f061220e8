"""The stats history of one worker id: raw float32 rows by the hour, plus 10 min and 1 h rollup tiers.

Layout (why, and the measured bytes: docs/storage.md):

* **Raw**: one :class:`~.columns.RawChunk` per hour of *report* time in a ``_StartIndex`` (below): int64 timestamps,
  task flags, and a float32 ``(rows, columns)`` block (NaN where a report did not carry a series). About
  4.4 bytes per value all in. Out-of-order reports (agents resend, tests write into the past) go to the
  right chunk by a bisect-insert; retention drops whole chunks.
* **Tiers**: one :class:`~.columns.TierDay` per UTC day: per 10 min and per 1 h bucket and column,
  (−min, max, sum, count), and per bucket (reports, reports with a task). Cascade: the newest 10 min
  bucket (the *pending* one) lives in raw only; when a report opens a later bucket, the pending bucket is
  reduced from its raw rows once and merged into both tiers. A late report (into a closed bucket) is
  merged into every tier it falls in at once. So the tiers always hold every record except the pending
  bucket's.
* **Horizon**: hours below ``_horizon`` may have lost raw rows (dropped by retention, or re-opened after
  a drop): they are answered from the tiers only. Above it, raw rows are complete.

Snapshots (:meth:`WorkerHistory.freeze`): the frozen view shares the chunks and days, and the history
moves to a new *generation*; a chunk or day of an older generation is copied before the history next
writes to it (copy-on-write). The cut is two C-level dict copies per worker, and the view can be encoded
in another thread while reports keep arriving. The persisted form is in
:mod:`.state`.

Retention is by *write* time (the server's clock when a chunk or day was last written), as upstream's
per-month Elasticsearch indices are: a client's bogus timestamps can never evict other data. A tier day
is dropped only once no raw chunk inside it remains, so raw and tiers never disagree.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from ..messages import Sample
from .columns import DAY_MS, HOUR_MS, TIER_MS, RawChunk, TierDay
from .plan import RawPart, TierPart, plan, raw_parts
from .series import EMPTY_LAYOUT, SeriesKey, SeriesLayout, SeriesShape, layout_of, shape_of

if TYPE_CHECKING:
    from .state import FrozenHistory

__all__ = ["RawPart", "SeriesKey", "TierPart", "WorkerHistory"]



_TEN = TIER_MS[0]
_CAPACITY_HINT = 4096  # rows: a new hot chunk's room is at most this (an agent sends 360 an hour)
_NO_BUCKET = -(2**62)

_V = TypeVar("_V")


class _StartIndex(dict[int, _V]):
    """Chunks (or days) by their start: a plain dict plus one sorted list of the starts.

    It stands in for ``sortedcontainers.SortedDict`` (same ``irange``/``peekitem``), which costs ~20
    GC-tracked objects per instance (its SortedList, key views and a dozen bound methods); this costs two,
    and the cyclic collector walks every tracked object of every worker on each full pass (the tail
    latency, docs/benchmarks.md). Lookups are the dict's (C); inserting a new start is a bisect-insert,
    once per hour of data. Iteration and ``items()`` are in start order.
    """

    __slots__ = ("_starts",)

    def __init__(self) -> None:
        super().__init__()
        self._starts: list[int] = []

    def __setitem__(self, key: int, value: _V) -> None:
        if key not in self:
            insort(self._starts, key)
        dict.__setitem__(self, key, value)

    def pop(self, key: int) -> _V:  # type: ignore[override]
        value = dict.pop(self, key)
        starts = self._starts
        del starts[bisect_left(starts, key)]
        return value

    def __iter__(self) -> Iterator[int]:
        return iter(self._starts)

    def keys(self) -> list[int]:  # type: ignore[override]
        return list(self._starts)

    def items(self) -> list[tuple[int, _V]]:  # type: ignore[override]
        return [(k, dict.__getitem__(self, k)) for k in self._starts]

    def irange(self, lo: int, hi: int) -> Iterator[int]:
        """The starts ``lo <= start <= hi``, ascending."""
        starts = self._starts
        return iter(starts[bisect_left(starts, lo) : bisect_right(starts, hi)])

    def peekitem(self, index: int) -> tuple[int, _V]:
        key = self._starts[index]
        return key, dict.__getitem__(self, key)


class WorkerHistory:
    """All retained stat records of one worker id (of one company).

    >>> h = WorkerHistory()
    >>> h.add(5_000, True, [("cpu_usage", "0", 10.0), ("memory_used", "total", 4.0)], written_at=0.0)
    >>> h.add(1_000, False, [("cpu_usage", "0", 30.0)], written_at=0.0)
    >>> ts, vals = h.series(0, 10_000, {"cpu_usage"})[("cpu_usage", "0")]
    >>> ts.tolist(), vals.tolist()
    ([1000, 5000], [30.0, 10.0])
    """

    __slots__ = (
        "_chunks", "_cnt", "_days", "_fresh", "_gen", "_horizon",
        "_hot", "_layout", "_open", "_pending", "_rows",
    )

    def __init__(self) -> None:
        # Typed Any, as the SortedDicts they replace were: dense.py and plan.py read them with invariants
        # (a listed start is present) that the type cannot carry.
        self._chunks: Any = _StartIndex[RawChunk]()
        self._days: Any = _StartIndex[TierDay]()
        self._cnt = np.zeros(0, np.int64)  # records per column in the tiers (pending rows: counted on read)
        self._rows = 0
        self._open = _NO_BUCKET  # start (ms) of the newest 10 min bucket seen
        self._pending = False  # its rows are in raw only, not yet merged into the tiers
        self._horizon = _NO_BUCKET  # hours below: tiers only
        self._hot: RawChunk | None = None  # the newest chunk, still with spare capacity
        self._gen = 0  # bumped by freeze(): chunks and days of older generations are shared, copy first
        self._layout = EMPTY_LAYOUT  # this worker's series: its arrays are as wide as it, never wider
        # chunks and days of the current generation (writable); freeze() seals them, as the cut shares them
        self._fresh: list[RawChunk | TierDay] = []

    def __len__(self) -> int:
        """Number of retained raw reports (rows)."""
        return self._rows

    @property
    def empty(self) -> bool:
        """True when neither raw rows nor rolled-up data remain."""
        return not self._chunks and not self._days

    @property
    def layout(self) -> SeriesLayout:
        """The series this history's columns hold (immutable: a new series moves it to a wider one)."""
        return self._layout

    @property
    def counts(self) -> Mapping[SeriesKey, int]:
        """Retained record count per series (raw or rolled up), as a fresh dict."""
        keys = self._layout.keys
        cnt = self._cnt.tolist()
        if self._pending:
            chunk = self._chunks[self._open - self._open % HOUR_MS]
            i, j = chunk.span(self._open, self._open + _TEN - 1)
            pending = (~np.isnan(chunk.vals[i:j])).sum(axis=0).tolist()
            cnt += [0] * (len(pending) - len(cnt))
            for c, n in enumerate(pending):
                cnt[c] += n
        return {keys[c]: n for c, n in enumerate(cnt) if n}

    # --- writing -----------------------------------------------------------------------------------------

    def add(self, ts_ms: int, has_task: bool, samples: Sequence[Sample], written_at: float) -> None:
        """Record one report's samples at ``ts_ms``; a report without samples records nothing.

        In-order reports cost an append (and, once per 10 min bucket, one reduction of its raw rows);
        a late one costs a bisect-insert plus a direct merge into both tiers.
        """
        if not samples:
            return
        last = {(m, v): x for m, v, x in samples}  # a key may repeat: the last value wins, as in a dict
        self.add_flat(ts_ms, has_task, shape_of(tuple(last)), list(last.values()), written_at)

    def add_flat(
        self, ts_ms: int, has_task: bool, shape: SeriesShape, values: Sequence[float], written_at: float
    ) -> None:
        """:meth:`add` of a report already flattened: ``values`` in the order of ``shape``'s keys (the
        parser's output, api.parse; the ingest path)."""
        if not values:
            return
        placed, self._layout = self._layout.place(shape)
        width = placed.width
        hour = ts_ms - ts_ms % HOUR_MS
        chunk = self._chunks.get(hour)
        if chunk is None:
            chunk = self._new_chunk(hour, width)
        elif chunk.gen != self._gen:
            chunk = self._thaw(hour, chunk)
        chunk.add(ts_ms, has_task, placed, values, width)
        if chunk is not self._hot:
            chunk.compact()
        if written_at > chunk.written:
            chunk.written = written_at
        self._rows += 1
        bucket = ts_ms - ts_ms % _TEN
        if bucket > self._open:
            if self._pending:
                self._close(written_at)
            self._open = bucket
            self._pending = not chunk.partial
            if chunk.partial:
                self._merge_report(bucket, has_task, placed.cols, values, written_at)
        elif bucket < self._open or not self._pending:
            self._merge_report(bucket, has_task, placed.cols, values, written_at)

    def _new_chunk(self, hour: int, width: int) -> RawChunk:
        day = self._days.get(hour - hour % DAY_MS)
        # The tiers already hold rows of this hour (its raw rows were dropped before), or the hour is below
        # the horizon: raw stays incomplete here, so its rows go straight to the tiers.
        partial = hour < self._horizon or (day is not None and bool(day.rc[1][(hour % DAY_MS) // HOUR_MS, 0]))
        hot = self._hot
        newest = hot is None or hour > _hour_of(hot)
        # The next hour likely holds as many rows as the last: room for them at once, not ~7 growths (copies)
        # by half again; a burst cannot make it huge, and the spare room goes at the next hour's compact.
        capacity = min(hot.n, _CAPACITY_HINT) + 8 if newest and hot is not None else 8
        chunk = self._chunks[hour] = RawChunk(width, partial, capacity)
        chunk.gen = self._gen
        self._fresh.append(chunk)
        if partial:
            self._horizon = max(self._horizon, hour + HOUR_MS)
        if newest:
            if hot is not None and hot.vals.shape[0] != hot.n:
                if hot.gen != self._gen:
                    hot = self._thaw(_hour_of(hot), hot)
                hot.compact()
            self._hot = chunk
        return chunk

    def _thaw(self, hour: int, chunk: RawChunk) -> RawChunk:
        """Replace a frozen chunk by a writable copy (copy-on-write) and return the copy."""
        copy = self._chunks[hour] = chunk.thawed(self._gen)
        self._fresh.append(copy)
        if chunk is self._hot:
            self._hot = copy
        return copy

    def _day(self, bucket: int, written_at: float) -> tuple[TierDay, int]:
        start = bucket - bucket % DAY_MS
        day = self._days.get(start)
        if day is None:
            day = self._days[start] = TierDay(len(self._layout))
            day.gen = self._gen
            self._fresh.append(day)
        else:
            if day.gen != self._gen:
                day = self._days[start] = day.thawed(self._gen)
                self._fresh.append(day)
            day.widen(len(self._layout))
        if written_at > day.written:
            day.written = written_at
        return day, (bucket - start) // _TEN

    def _count(self, cols: np.ndarray | slice, counts: np.ndarray | int) -> None:
        cnt = self._cnt
        width = len(self._layout)
        if len(cnt) < width:
            self._cnt = cnt = np.concatenate((cnt, np.zeros(width - len(cnt), np.int64)))
        cnt[cols] += counts

    def _merge_report(
        self, bucket: int, has_task: bool, cols: np.ndarray, values: Sequence[float], written_at: float
    ) -> None:
        v = np.array(values, np.float32)
        day, slot = self._day(bucket, written_at)
        day.merge(slot, cols, -v, v, v.astype(np.float64), np.ones(len(v)), 1, int(has_task))
        self._count(cols, 1)

    def _close(self, written_at: float) -> None:
        """Reduce the pending bucket's raw rows and merge them into every tier."""
        bucket = self._open
        chunk = self._chunks[bucket - bucket % HOUR_MS]
        i, j = chunk.span(bucket, bucket + _TEN - 1)
        block = chunk.vals[i:j]
        counts = (~np.isnan(block)).sum(axis=0)
        cols: np.ndarray | slice
        if len(counts) and counts.min() == j - i:
            # The usual bucket: every row holds every column (an agent sends the same shape each time).
            # Slices instead of fancy indexing, and a plain sum, as there is no NaN: the same values in
            # the same order, so the same bits, for ~half the cost of a close.
            cols, sub = slice(0, block.shape[1]), block
            sums = block.sum(axis=0, dtype=np.float64)
        else:
            cols = np.flatnonzero(counts)
            sub = block[:, cols]
            sums = np.asarray(np.nansum(sub, axis=0, dtype=np.float64))
        day, slot = self._day(bucket, written_at)
        day.merge(
            slot,
            cols,
            -np.fmin.reduce(sub, axis=0),
            np.fmax.reduce(sub, axis=0),
            sums,
            counts[cols].astype(np.float64),
            j - i,
            int(np.count_nonzero(chunk.task[i:j])),
        )
        self._count(cols, counts[cols])
        self._pending = False

    def drop_written_before(self, cutoff: float, tier_cutoff: float | None = None) -> int:
        """Retention: drop raw chunks last written before ``cutoff`` and tier days last written before
        ``tier_cutoff`` (default: ``cutoff``), both server seconds; returns raw rows dropped.

        Raw rows leave the tiers untouched: until their day goes, queries over those hours answer from
        the tiers (docs/storage.md). A day is dropped only when no raw chunk inside it remains.
        """
        if tier_cutoff is None:
            tier_cutoff = cutoff
        dropped = 0
        for hour in [h for h, c in self._chunks.items() if c.written < cutoff]:
            if self._pending and self._open - self._open % HOUR_MS == hour:
                self._close(self._chunks[hour].written)
            chunk = self._chunks.pop(hour)
            dropped += chunk.n
            self._horizon = max(self._horizon, hour + HOUR_MS)
            if chunk is self._hot:
                self._hot = None
        self._rows -= dropped
        chunks = self._chunks
        for start in [d for d, day in self._days.items() if day.written < tier_cutoff]:
            if next(iter(chunks.irange(start, start + DAY_MS - 1)), None) is not None:
                continue
            day = self._days.pop(start)
            gone = day.counts().astype(np.int64)
            self._count(np.arange(len(gone)), -gone)
        return dropped

    # --- persistence -------------------------------------------------------------------------------------

    def freeze(self) -> FrozenHistory:
        """A consistent read-only view of the history as it is now, copying no rows (~1 µs a worker).

        The view shares the chunks and days; the history moves to a new generation and copies each of them
        before it next writes to it (copy-on-write). The view may be encoded in another thread
        (:meth:`.state.FrozenHistory.to_state`) while the event loop goes on writing.
        """
        from .state import FrozenHistory

        # Everything written since the last cut is about to be shared with this one: seal it, so no write
        # (or read) can change it under the thread that encodes it. Older objects are sealed already.
        for obj in self._fresh:
            obj.seal()
        self._fresh.clear()
        self._gen += 1
        # Keys and values of the indexes' plain-dict part, as tuples: C speed, no per-chunk object for
        # the collector. Unsorted (insertion order): the view sorts them later, in the thread that encodes.
        chunks, days = self._chunks, self._days
        return FrozenHistory(
            (tuple(dict.keys(chunks)), tuple(dict.values(chunks))),
            (tuple(dict.keys(days)), tuple(dict.values(days))),
            self._open,
            self._pending,
            self._horizon,
            self._layout.keys,
        )

    def to_state(self) -> dict[str, Any]:
        """The whole history as plain data for msgpack (layout: :meth:`.state.FrozenHistory.to_state`)."""
        return self.freeze().to_state()

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> WorkerHistory:
        """Rebuild a history from :meth:`to_state` output (of any process: series are matched by name);
        raises ValueError naming what is malformed."""
        from .state import load_state

        h = cls()
        chunks, days, h._open, h._pending, h._horizon = load_state(state)
        # load_state keeps the file's column order: the history's layout is the file's series list
        h._layout = layout_of(tuple((m, v) for m, v in state["series"]))
        # The loaded chunks and days are sealed (read-only views of the state's bytes, generation -1): not
        # fresh; each is copied before its first write, as after a cut.
        for hour, chunk in chunks:
            h._chunks[hour] = chunk
            h._rows += chunk.n
        for start, day in days:
            h._days[start] = day
            h._count(np.arange(day.width), day.counts().astype(np.int64))
        if h._chunks:
            h._hot = h._chunks.peekitem(-1)[1]  # appends to the newest hour grow it, not copy it per report
        if h._pending:
            chunk = h._chunks.get(h._open - h._open % HOUR_MS)
            i, j = (0, 0) if chunk is None or chunk.partial else chunk.span(h._open, h._open + _TEN - 1)
            if j <= i:
                raise ValueError(f"pending bucket {h._open} has no raw rows")
        return h

    def extent(self) -> tuple[int, int] | None:
        """``(first, last)`` ms: the hours (raw) and UTC days (tiers) holding records, ends aligned to them;
        None when empty. Every record lies inside; queries narrow their grid to it."""
        # the sorted start lists, read directly: every fleet query calls this once per worker
        hours, days = self._chunks._starts, self._days._starts
        if not days:
            return (hours[0], hours[-1] + HOUR_MS - 1) if hours else None
        if not hours:
            return days[0], days[-1] + DAY_MS - 1
        return min(hours[0], days[0]), max(hours[-1] + HOUR_MS - 1, days[-1] + DAY_MS - 1)

    # --- reading raw rows --------------------------------------------------------------------------------

    def rows(self, lo_ms: int, hi_ms: int) -> tuple[np.ndarray, np.ndarray]:
        """Timestamps (int64 ms) and task flags (bool) of the raw reports in ``[lo_ms, hi_ms]``, ascending."""
        parts: list[RawPart] = []
        raw_parts(self, lo_ms, hi_ms, parts)
        if not parts:
            return np.empty(0, np.int64), np.empty(0, np.bool_)
        return (
            np.concatenate([c.ts[i:j] for c, i, j in parts]),
            np.concatenate([c.task[i:j] for c, i, j in parts]),
        )

    def series(
        self, lo_ms: int, hi_ms: int, metrics: set[str] | frozenset[str]
    ) -> dict[SeriesKey, tuple[np.ndarray, np.ndarray]]:
        """``{(metric, variant): (timestamps ms, values)}`` of the raw records of ``metrics`` in ``[lo_ms, hi_ms]``.

        Fresh arrays in ascending time order; values are the stored float32 values as float64.
        """
        parts: list[RawPart] = []
        raw_parts(self, lo_ms, hi_ms, parts)
        if not parts:
            return {}
        ts_all = np.concatenate([c.ts[i:j] for c, i, j in parts])
        out: dict[SeriesKey, tuple[np.ndarray, np.ndarray]] = {}
        for col in self._layout.columns_of(metrics):
            vals = np.concatenate(
                [c.vals[i:j, col] if col < c.vals.shape[1] else np.full(j - i, np.nan, np.float32) for c, i, j in parts]
            )
            present = ~np.isnan(vals)
            if present.any():
                out[self._layout.keys[col]] = (ts_all[present], vals[present].astype(np.float64))
        return out

    def plan(self, lo_ms: int, hi_ms: int, step_ms: int) -> list[TierPart | RawPart]:
        """The parts answering ``[lo_ms, hi_ms]`` at ``step_ms`` buckets, in time order (:func:`.plan`)."""
        return plan(self, lo_ms, hi_ms, step_ms)

    def latest(self) -> dict[SeriesKey, float]:
        """The values of the newest raw report (by report time), ``{}`` when no raw row is left.

        O(columns): one row of the newest chunk; for the /metrics fleet gauges, read at every scrape.
        """
        if not self._chunks:
            return {}
        chunk = self._chunks.peekitem(-1)[1]
        row = chunk.vals[chunk.n - 1]
        values, keys = row.tolist(), self._layout.keys
        return {keys[c]: values[c] for c in np.flatnonzero(~np.isnan(row)).tolist()}

    # --- invariants --------------------------------------------------------------------------------------

    def _check(self) -> None:
        """Assert every structural invariant (used by the property tests after each step)."""
        rows = 0
        self._layout._check()
        width = len(self._layout)
        cnt = np.zeros(width, np.int64)
        fresh = {id(obj) for obj in self._fresh}
        tier_rows = 0
        for start, chunk in self._chunks.items():
            n = chunk.n
            assert n > 0, "empty chunk retained"
            assert start % HOUR_MS == 0
            ts = chunk.ts[:n]
            assert ((ts >= start) & (ts < start + HOUR_MS)).all(), "row outside its chunk"
            assert (np.diff(ts) >= 0).all(), "rows out of order"
            assert chunk.last == int(ts[-1]), "a chunk's last timestamp is stale"
            assert len(chunk.task) >= n and chunk.vals.shape[0] >= n
            assert chunk is self._hot or chunk.vals.shape[0] == n, "spare capacity in a cold chunk"
            assert (~np.isnan(chunk.vals[:n])).any(axis=1).all(), "a row without values"
            assert not chunk.partial or start < self._horizon
            assert chunk.width <= width, "a chunk wider than its history's layout"
            # a chunk shared with a cut is read-only; one written since is private and in _fresh
            assert chunk.sealed == (chunk.gen != self._gen), "shared chunk writable, or private one sealed"
            assert chunk.sealed or id(chunk) in fresh
            rows += n
        assert rows == self._rows
        for start, day in self._days.items():
            assert start % DAY_MS == 0
            assert day.written > -np.inf
            w = day.width
            assert w <= width, "a day wider than its history's layout"
            assert day.sealed == (day.gen != self._gen), "a shared day writable, or a private one sealed"
            assert day.sealed or id(day) in fresh
            cnt[:w] += day.counts().astype(np.int64)
            c0, c1 = day.sc[0][:, 1], day.sc[1][:, 1]
            # the 1 h tier is exactly the cascade of the 10 min tier
            assert np.array_equal(c0.reshape(w, 24, 6).sum(axis=2), c1)
            assert np.array_equal(day.rc[0].reshape(24, 6, 2).sum(axis=1), day.rc[1])
            for t in range(2):
                mm, sc, rc = day.mm[t], day.sc[t], day.rc[t]
                empty = sc[:, 1] == 0
                lo_, hi_ = mm[:, 0], mm[:, 1]
                assert (lo_[empty] == -np.inf).all() and (hi_[empty] == -np.inf).all(), "stats in empty bucket"
                assert (-lo_[~empty] <= hi_[~empty]).all(), "min above max"
                assert ((rc[:, 0] > 0) == (sc[:, 1] > 0).any(axis=0)).all(), "report count vs records"
                assert (rc[:, 1] <= rc[:, 0]).all()
            tier_rows += int(day.rc[0][:, 0].sum())
        if self._pending:
            chunk = self._chunks[self._open - self._open % HOUR_MS]
            assert not chunk.partial
            i, j = chunk.span(self._open, self._open + _TEN - 1)
            assert j > i, "pending bucket without rows"
            day = self._days.get(self._open - self._open % DAY_MS)
            if day is not None:
                assert day.rc[0][(self._open % DAY_MS) // _TEN, 0] == 0, "pending bucket already rolled up"
        width = max(len(cnt), len(self._cnt))
        assert np.array_equal(np.pad(cnt, (0, width - len(cnt))), np.pad(self._cnt, (0, width - len(self._cnt))))


def _hour_of(chunk: RawChunk) -> int:
    """The start of the hour a chunk holds (Python ints: int64 arithmetic would wrap near its limits)."""
    first = int(chunk.ts[0])
    return first - first % HOUR_MS
