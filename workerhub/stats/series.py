"""Which ``(metric, variant)`` each column of a worker's arrays holds: immutable, interned layouts.

Every :class:`~.history.WorkerHistory` owns one :class:`SeriesLayout`; its arrays are exactly as wide as
the series that worker has reported, so a worker that sends 100,000 cores widens only its own arrays.
A layout never changes: a report with a new series moves its history to a wider layout (the old columns
keep their numbers, new ones are appended), which is why a chunk or day made earlier is simply narrower
and its missing columns read as absent.

Layouts are interned by their key tuple in a weak table: the fleet's workers, which send the same shape,
share one layout object, so a query resolves its columns once per distinct layout, not once per worker.
Only layouts some history still holds stay alive (a worker that grows one series at a time leaves no
chain of intermediate layouts behind).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable

import numpy as np

__all__ = ["EMPTY_LAYOUT", "SeriesKey", "SeriesLayout", "layout_of"]

SeriesKey = tuple[str, str]
"""``(metric, variant)``."""

_SHAPES_PER_LAYOUT = 64
"""Report shapes remembered per layout: agents send the same shape every time, so one or two are in use;
the bound keeps a client that varies its shape from growing the cache."""

_lock = threading.Lock()  # two hubs in two threads may intern at once
_interned: weakref.WeakValueDictionary[tuple[SeriesKey, ...], SeriesLayout] = weakref.WeakValueDictionary()


class SeriesLayout:
    """An immutable ``(metric, variant)`` ↔ column map (columns in order of first arrival)."""

    __slots__ = ("__weakref__", "_index", "_shapes", "keys")

    def __init__(self, keys: tuple[SeriesKey, ...]) -> None:
        self.keys = keys
        self._index = {k: c for c, k in enumerate(keys)}
        # A report's key sequence → its columns, for shapes this layout already covers: one look-up per
        # report instead of ~24.
        self._shapes: dict[tuple[tuple[str, ...], tuple[str, ...]], np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.keys)

    def __repr__(self) -> str:
        return f"SeriesLayout({len(self.keys)} series)"

    def get(self, key: SeriesKey) -> int | None:
        """The column of ``key``, or None when this layout does not hold it."""
        return self._index.get(key)

    def missing(self, keys: Iterable[SeriesKey]) -> int:
        """How many distinct keys of ``keys`` this layout does not hold (the cap's arithmetic)."""
        return len({k for k in keys if k not in self._index})

    def columns(
        self, metrics: tuple[str, ...], variants: tuple[str, ...]
    ) -> tuple[np.ndarray, SeriesLayout] | None:
        """Columns (int64) of a report's series and the layout holding them (``self``, or a wider one when
        the report carries new series); None when a key repeats (the caller dedupes)."""
        shape = (metrics, variants)
        cols = self._shapes.get(shape)
        if cols is not None:
            return cols, self
        keys = list(zip(metrics, variants))
        if len(set(keys)) != len(keys):
            return None
        new = [k for k in keys if k not in self._index]
        layout = self.extended(new) if new else self
        index = layout._index
        cols = np.fromiter((index[k] for k in keys), np.int64, len(keys))
        if not new and len(self._shapes) < _SHAPES_PER_LAYOUT:
            self._shapes[shape] = cols
        return cols, layout

    def extended(self, keys: Iterable[SeriesKey]) -> SeriesLayout:
        """This layout with ``keys`` (those it lacks) appended, interned."""
        new = tuple(dict.fromkeys(k for k in keys if k not in self._index))
        return layout_of(self.keys + new) if new else self

    def columns_of(self, metrics: set[str] | frozenset[str]) -> list[int]:
        """Columns whose metric is in ``metrics``, ascending."""
        return [c for c, (m, _v) in enumerate(self.keys) if m in metrics]

    def _check(self) -> None:
        """Assert the layout's invariants (called by the property tests)."""
        assert len(self._index) == len(self.keys), "a series is held twice"
        assert all(self._index[k] == c for c, k in enumerate(self.keys)), "index and keys disagree"
        for (metrics, variants), cols in self._shapes.items():
            assert [self.keys[c] for c in cols.tolist()] == list(zip(metrics, variants)), "stale shape"
        assert _interned.get(self.keys) is self, "layout not interned"


def layout_of(keys: tuple[SeriesKey, ...]) -> SeriesLayout:
    """The one live layout with exactly these keys, in this order."""
    with _lock:
        layout = _interned.get(keys)
        if layout is None:
            layout = _interned[keys] = SeriesLayout(keys)
        return layout


EMPTY_LAYOUT = layout_of(())
