"""The stats history as it was before tiers (array("d") columns per series), kept as the benchmarks' reference.

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
from array import array
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from sortedcontainers import SortedDict

from workerhub.messages import Sample

__all__ = ["CHUNK_MS", "SeriesKey", "WorkerHistory"]

CHUNK_MS = 3_600_000
"""Report-time span of one chunk: an hour (~360 rows at the agents' 10 s cadence)."""

SeriesKey = tuple[str, str]
"""``(metric, variant)``."""

_NAN = math.nan


class _Chunk:
    __slots__ = ("ts", "task", "cols", "written")

    def __init__(self) -> None:
        self.ts = array("q")
        self.task = bytearray()
        self.cols: dict[SeriesKey, array[float]] = {}
        self.written = -math.inf


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
        for metric, variant, _ in samples:
            key = (metric, variant)
            counts[key] = counts.get(key, 0) + 1
        self._rows += 1
        if written_at > chunk.written:
            chunk.written = written_at

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
