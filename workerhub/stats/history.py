"""The stats history of one worker id: compact, time-ordered columns in epoch-aligned chunks.

Layout (why): a report yields up to ~24 values that share one timestamp and one "had a task" flag, so each
chunk stores one ``array('q')`` of report timestamps (ms), one ``bytearray`` of task flags, and one
``array('d')`` per series ``(metric, variant)`` aligned with the rows, NaN where a report did not carry that
series. That is ~8.4 bytes per value all in, against ~37 for a tuple per row. Chunks span
:data:`CHUNK_MS` of *report* time and live in a ``SortedDict`` keyed by their start, so out-of-order reports
(agents resend, tests write into the past) go to the right chunk and a bisect-insert there, range queries
touch only the chunks they overlap, and retention drops whole chunks.

Retention is by *write* time (the server's clock when a chunk was last written), as upstream's
per-month Elasticsearch indices are: a client's bogus timestamps can never evict other data.
"""

from __future__ import annotations

import math
import sys
from array import array
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from sortedcontainers import SortedDict

from ..messages import Sample

__all__ = ["CHUNK_MS", "FrozenHistory", "SeriesKey", "WorkerHistory"]

CHUNK_MS = 3_600_000
"""Report-time span of one chunk: an hour (~360 rows at the agents' 10 s cadence)."""

SeriesKey = tuple[str, str]
"""``(metric, variant)``."""

_NAN = math.nan


class _Chunk:
    __slots__ = ("ts", "task", "cols", "written", "frozen")

    def __init__(self) -> None:
        self.ts = array("q")
        self.task = bytearray()
        self.cols: dict[SeriesKey, array[float]] = {}
        self.written = -math.inf
        # Set while a FrozenHistory may be reading this chunk (from another thread): writers copy it first.
        self.frozen = False

    def thawed(self) -> _Chunk:
        """A private, writable copy (copy-on-write after :meth:`WorkerHistory.freeze`)."""
        out = _Chunk()
        out.ts = array("q", self.ts)
        out.task = bytearray(self.task)
        out.cols = {key: array("d", col) for key, col in self.cols.items()}
        out.written = self.written
        return out


class WorkerHistory:
    """All retained stat records of one worker id (of one company), in report-timestamp order.

    >>> h = WorkerHistory()
    >>> h.add(5_000, True, [("cpu_usage", "0", 10.0), ("memory_used", "total", 4.0)], written_at=0.0)
    >>> h.add(1_000, False, [("cpu_usage", "0", 30.0)], written_at=0.0)
    >>> ts, vals = h.series(0, 10_000, {"cpu_usage"})[("cpu_usage", "0")]
    >>> ts.tolist(), vals.tolist()
    ([1000, 5000], [30.0, 10.0])
    """

    __slots__ = ("_chunks", "_counts", "_rows")

    def __init__(self) -> None:
        self._chunks: SortedDict[int, _Chunk] = SortedDict()
        self._counts: dict[SeriesKey, int] = {}
        self._rows = 0

    def __len__(self) -> int:
        """Number of retained reports (rows)."""
        return self._rows

    @property
    def counts(self) -> Mapping[SeriesKey, int]:
        """Retained record count per series, kept up to date on every add and drop (read-only view)."""
        return self._counts

    def add(self, ts_ms: int, has_task: bool, samples: Sequence[Sample], written_at: float) -> None:
        """Record one report's samples at ``ts_ms``; a report without samples records nothing.

        O(1) amortised for in-order reports; a late one costs a bisect and an insert in its chunk.
        """
        if not samples:
            return
        start = ts_ms - ts_ms % CHUNK_MS
        chunk = self._chunks.get(start)
        if chunk is None:
            chunk = self._chunks[start] = _Chunk()
        elif chunk.frozen:
            chunk = self._chunks[start] = chunk.thawed()
        ts = chunk.ts
        n = len(ts)
        pos = n if n == 0 or ts_ms >= ts[-1] else bisect_right(ts, ts_ms)
        values = {(metric, variant): value for metric, variant, value in samples}
        if pos == n:
            ts.append(ts_ms)
            chunk.task.append(has_task)
            for key, col in chunk.cols.items():
                col.append(values.pop(key, _NAN))
        else:
            ts.insert(pos, ts_ms)
            chunk.task.insert(pos, has_task)
            for key, col in chunk.cols.items():
                col.insert(pos, values.pop(key, _NAN))
        for key, value in values.items():  # series this chunk has not seen yet
            col = array("d", [_NAN]) * (n + 1)
            col[pos] = value
            chunk.cols[key] = col
        counts = self._counts
        for key in dict.fromkeys((metric, variant) for metric, variant, _ in samples):
            # once per series even if a report repeats one (the last value is kept, as in the columns)
            counts[key] = counts.get(key, 0) + 1
        self._rows += 1
        if written_at > chunk.written:
            chunk.written = written_at

    # --- persistence: a compact plain-data form (arrays as little-endian bytes) ---------------------------

    def freeze(self) -> FrozenHistory:
        """A consistent read-only view of the history as it is now, in O(chunks) without copying rows.

        Later writes copy a chunk before changing it (copy-on-write), so the view may be encoded from another
        thread (:meth:`FrozenHistory.to_state`) while the event loop keeps writing.
        """
        starts, chunks = list(self._chunks.keys()), list(self._chunks.values())
        for chunk in chunks:
            chunk.frozen = True
        return FrozenHistory(starts, chunks)

    def to_state(self) -> dict[str, list[list[object]]]:
        """The whole history as plain data for msgpack (see :meth:`FrozenHistory.to_state`)."""
        return self.freeze().to_state()

    @classmethod
    def from_state(cls, state: Mapping[str, object]) -> WorkerHistory:
        """Rebuild a history from :meth:`to_state` output; raises ValueError naming what is malformed."""
        h = cls()
        chunks = state.get("chunks")
        if not isinstance(chunks, list):
            raise ValueError("history has no chunk list")
        for item in chunks:
            start, written, ts_raw, task_raw, cols_raw = item
            if not isinstance(start, int) or start % CHUNK_MS or not isinstance(written, (int, float)):
                raise ValueError(f"bad chunk header {start!r}")
            chunk = _Chunk()
            chunk.ts.frombytes(ts_raw)
            chunk.task = bytearray(task_raw)
            n = len(chunk.ts)
            if n == 0 or len(chunk.task) != n:
                raise ValueError(f"chunk {start}: {n} rows but {len(chunk.task)} task flags")
            if _SWAP:
                chunk.ts.byteswap()
            ts = np.frombuffer(chunk.ts, dtype=np.int64)
            if ts[0] < start or ts[-1] >= start + CHUNK_MS or (n > 1 and bool((ts[1:] < ts[:-1]).any())):
                raise ValueError(f"chunk {start}: rows out of order or outside the chunk")
            del ts
            for metric, variant, raw in cols_raw:
                col = array("d")
                col.frombytes(raw)
                if len(col) != n:
                    raise ValueError(f"chunk {start}: column {metric}/{variant} has {len(col)} of {n} rows")
                if _SWAP:
                    col.byteswap()
                key = (str(metric), str(variant))
                chunk.cols[key] = col
                present = int(np.count_nonzero(~np.isnan(np.frombuffer(col))))
                h._counts[key] = h._counts.get(key, 0) + present
            chunk.written = float(written)
            h._chunks[start] = chunk
            h._rows += n
        return h

    def drop_written_before(self, cutoff: float) -> int:
        """Retention: drop every chunk last written before ``cutoff`` (server seconds); returns rows dropped."""
        stale = [start for start, chunk in self._chunks.items() if chunk.written < cutoff]
        dropped = 0
        for start in stale:
            chunk = self._chunks.pop(start)
            dropped += len(chunk.ts)
            for key, col in chunk.cols.items():
                left = self._counts[key] - int(np.count_nonzero(~np.isnan(np.frombuffer(col))))
                if left:
                    self._counts[key] = left
                else:
                    del self._counts[key]
        self._rows -= dropped
        return dropped

    def _overlapping(self, lo_ms: int, hi_ms: int) -> Iterable[tuple[_Chunk, int, int]]:
        """Chunks overlapping ``[lo_ms, hi_ms]`` with the row slice ``[i, j)`` inside each."""
        chunks = self._chunks
        for start in chunks.irange(lo_ms - lo_ms % CHUNK_MS, hi_ms):
            chunk = chunks[start]
            ts = np.frombuffer(chunk.ts, dtype=np.int64)
            i = 0 if start >= lo_ms else int(np.searchsorted(ts, lo_ms, "left"))
            j = len(ts) if start + CHUNK_MS <= hi_ms else int(np.searchsorted(ts, hi_ms, "right"))
            del ts  # release the buffer export before anything else can touch the array
            if i < j:
                yield chunk, i, j

    def rows(self, lo_ms: int, hi_ms: int) -> tuple[np.ndarray, np.ndarray]:
        """Timestamps (int64 ms) and task flags (bool) of the reports in ``[lo_ms, hi_ms]``, ascending."""
        ts_parts: list[np.ndarray] = []
        task_parts: list[np.ndarray] = []
        for chunk, i, j in self._overlapping(lo_ms, hi_ms):
            ts_parts.append(np.frombuffer(chunk.ts, dtype=np.int64)[i:j])
            task_parts.append(np.frombuffer(chunk.task, dtype=np.bool_)[i:j])
        if not ts_parts:
            return np.empty(0, np.int64), np.empty(0, np.bool_)
        return np.concatenate(ts_parts), np.concatenate(task_parts)

    def series(
        self, lo_ms: int, hi_ms: int, metrics: set[str] | frozenset[str]
    ) -> dict[SeriesKey, tuple[np.ndarray, np.ndarray]]:
        """``{(metric, variant): (timestamps ms, values)}`` for records of ``metrics`` in ``[lo_ms, hi_ms]``.

        Both arrays are fresh copies in ascending time order; missing values are already removed.
        """
        parts: dict[SeriesKey, tuple[list[np.ndarray], list[np.ndarray]]] = {}
        for chunk, i, j in self._overlapping(lo_ms, hi_ms):
            ts = None
            for key, col in chunk.cols.items():
                if key[0] not in metrics:
                    continue
                if ts is None:
                    ts = np.frombuffer(chunk.ts, dtype=np.int64)[i:j]
                entry = parts.get(key)
                if entry is None:
                    entry = parts[key] = ([], [])
                entry[0].append(ts)
                entry[1].append(np.frombuffer(col, dtype=np.float64)[i:j])
        out: dict[SeriesKey, tuple[np.ndarray, np.ndarray]] = {}
        for key, (ts_parts, val_parts) in parts.items():
            ts_all = np.concatenate(ts_parts)
            vals = np.concatenate(val_parts)
            present = ~np.isnan(vals)
            if not present.all():
                ts_all, vals = ts_all[present], vals[present]
            if len(vals):
                out[key] = (ts_all, vals)
        return out

    def _check(self) -> None:
        """Assert every structural invariant (used by the property tests after each step)."""
        rows = 0
        counts: dict[SeriesKey, int] = {}
        for start, chunk in self._chunks.items():
            n = len(chunk.ts)
            assert n > 0, "empty chunk retained"
            assert len(chunk.task) == n
            assert all(start <= t < start + CHUNK_MS for t in chunk.ts), "row outside its chunk"
            assert all(a <= b for a, b in zip(chunk.ts, chunk.ts[1:])), "rows out of order"
            for key, col in chunk.cols.items():
                assert len(col) == n, "column not aligned with rows"
                present = sum(1 for v in col if not math.isnan(v))
                assert present > 0, "all-missing column"
                counts[key] = counts.get(key, 0) + present
            rows += n
        assert rows == self._rows
        assert counts == self._counts, (counts, self._counts)


_SWAP = sys.byteorder != "little"
"""The persisted form is little-endian; a big-endian machine swaps on the way in and out."""


def _le(a: array) -> memoryview:  # type: ignore[type-arg]
    # A view, not a copy: frozen arrays are never changed again, and msgpack packs a view as bin directly.
    if _SWAP:
        a = array(a.typecode, a)
        a.byteswap()
    return memoryview(a).cast("B")


class FrozenHistory:
    """A read-only view of a :class:`WorkerHistory` at one instant (from :meth:`WorkerHistory.freeze`).

    Safe to encode from a worker thread: the chunks it holds are never changed again (writers copy them).
    """

    __slots__ = ("_starts", "_chunks")

    def __init__(self, starts: list[int], chunks: list[_Chunk]) -> None:
        self._starts = starts
        self._chunks = chunks

    def __len__(self) -> int:
        return sum(len(chunk.ts) for chunk in self._chunks)

    def to_state(self) -> dict[str, list[list[object]]]:
        """``{"chunks": [[start_ms, written_s, ts bytes, task bytes, [[metric, variant, values bytes]...]]]}``.

        ``ts`` is int64 ms and values float64 (NaN = series absent from that report), both little-endian;
        task flags are one byte per row. About 8 bytes per stored value, like the in-memory layout. The
        byte fields are zero-copy views of the frozen arrays: pack them (msgpack writes them as bin) or
        copy them before the history goes away.
        """
        return {
            "chunks": [
                [
                    start,
                    chunk.written,
                    _le(chunk.ts),
                    memoryview(chunk.task),
                    [[metric, variant, _le(col)] for (metric, variant), col in chunk.cols.items()],
                ]
                for start, chunk in zip(self._starts, self._chunks)
            ]
        }
