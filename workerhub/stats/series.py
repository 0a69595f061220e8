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

__all__ = ["EMPTY_LAYOUT", "Placement", "SeriesKey", "SeriesLayout", "SeriesShape", "layout_of", "shape_of"]

SeriesKey = tuple[str, str]
"""``(metric, variant)``."""

_SHAPES_PER_LAYOUT = 64
"""Report shapes remembered per layout: agents send the same shape every time, so one or two are in use;
the bound keeps a client that varies its shape from growing the cache."""

_INTERN_KEYS = 1 << 16
"""Series keys, summed over the shapes :func:`shape_of` keeps interned (a few MB at most); past it the table
starts afresh, so a client varying its shape without end cannot grow it. Shapes compare by their keys, so one
made before a reset still finds its columns; only the sharing of one object is lost."""
_INTERN_MAX = 512
"""A shape of more series than this is not interned: an agent's has ~25, and one huge shape must not take
the table's whole budget."""

_lock = threading.Lock()  # two hubs in two threads may intern at once
_interned: weakref.WeakValueDictionary[tuple[SeriesKey, ...], SeriesLayout] = weakref.WeakValueDictionary()


class SeriesShape:
    """The ``(metric, variant)`` keys of one report, in order, all distinct: what the report's values line up
    with. Equal keys make equal shapes; :func:`shape_of` interns them, so the fleet's reports share a few
    shape objects and a layout finds a report's columns by one hash look-up (the hash is computed once)."""

    __slots__ = ("_hash", "keys", "metrics", "variants")

    def __init__(self, keys: tuple[SeriesKey, ...]) -> None:
        self.keys = keys
        self.metrics = tuple(m for m, _v in keys)
        self.variants = tuple(v for _m, v in keys)
        self._hash = hash(keys)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return self is other or (isinstance(other, SeriesShape) and self.keys == other.keys)

    def __len__(self) -> int:
        return len(self.keys)

    def __repr__(self) -> str:
        return f"SeriesShape({len(self.keys)} series)"


_shapes: dict[tuple[SeriesKey, ...], SeriesShape] = {}
_held = [0]  # series keys held by _shapes


def shape_of(keys: tuple[SeriesKey, ...]) -> SeriesShape:
    """The interned shape of these keys (which must be distinct)."""
    shape = _shapes.get(keys)
    if shape is None:
        shape = SeriesShape(keys)
        if len(keys) <= _INTERN_MAX:
            if _held[0] + len(keys) > _INTERN_KEYS:
                _shapes.clear()
                _held[0] = 0
            _shapes[keys] = shape
            _held[0] += len(keys)
    return shape


class Placement:
    """Where a shape's values go in a layout's columns: ``cols`` (int64, in the shape's order), and when
    they are the consecutive columns ``lo .. hi - 1`` (the usual case: a worker's layout is built from its
    own reports), ``lo >= 0``, so a row is written through a slice (~1 µs) instead of fancy indexing (~3).
    ``width``: the number of columns of the layout it belongs to."""

    __slots__ = ("cols", "hi", "lo", "width")

    def __init__(self, cols: np.ndarray, width: int) -> None:
        self.cols = cols
        self.width = width
        n = len(cols)
        first = int(cols[0]) if n else 0
        contiguous = n > 0 and bool((cols == np.arange(first, first + n)).all())
        self.lo, self.hi = (first, first + n) if contiguous else (-1, -1)


class SeriesLayout:
    """An immutable ``(metric, variant)`` ↔ column map (columns in order of first arrival)."""

    __slots__ = ("__weakref__", "_index", "_placed", "keys")

    def __init__(self, keys: tuple[SeriesKey, ...]) -> None:
        self.keys = keys
        self._index = {k: c for c, k in enumerate(keys)}
        # A report shape → where its values go, for shapes this layout already covers: one look-up (by a
        # precomputed hash) per report instead of ~24.
        self._placed: dict[SeriesShape, Placement] = {}

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

    def holds(self, shape: SeriesShape) -> bool:
        """True when every series of ``shape`` has a column here (for a shape seen before: one look-up)."""
        if shape in self._placed:
            return True
        index = self._index
        return all(k in index for k in shape.keys)

    def place(self, shape: SeriesShape) -> tuple[Placement, SeriesLayout]:
        """Where ``shape``'s values go, and the layout holding them (``self``, or a wider one when the shape
        carries new series)."""
        placed = self._placed.get(shape)
        if placed is not None:
            return placed, self
        index = self._index
        new = [k for k in shape.keys if k not in index]
        if new:
            layout = self.extended(new)
            return layout.place(shape)[0], layout
        placed = Placement(np.fromiter((index[k] for k in shape.keys), np.int64, len(shape)), len(self.keys))
        if len(self._placed) < _SHAPES_PER_LAYOUT:
            self._placed[shape] = placed
        return placed, self

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
        for shape, placed in self._placed.items():
            assert [self.keys[c] for c in placed.cols.tolist()] == list(shape.keys), "stale placement"
            if placed.lo >= 0:
                assert placed.cols.tolist() == list(range(placed.lo, placed.hi)), "not contiguous"
            assert placed.width == len(self.keys), "placement of another layout"
        assert _interned.get(self.keys) is self, "layout not interned"


def layout_of(keys: tuple[SeriesKey, ...]) -> SeriesLayout:
    """The one live layout with exactly these keys, in this order."""
    with _lock:
        layout = _interned.get(keys)
        if layout is None:
            layout = _interned[keys] = SeriesLayout(keys)
        return layout


EMPTY_LAYOUT = layout_of(())
