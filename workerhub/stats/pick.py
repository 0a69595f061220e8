"""A query's columns in each worker's arrays: read-only selection, absent columns filled, nothing widened.

A query names its output series once (``keys``); each worker's arrays hold the series of that worker's
:class:`~.series.SeriesLayout`, in its order, and an array made before the layout grew is narrower still.
:class:`Picker` resolves, once per distinct (layout, array width), where the query's columns are
(:class:`Pick`), and :func:`take` reads them: a view when every column is there in one run, otherwise a
fresh array with ``fill`` (NaN, −inf or 0: "no record") where a column is absent. Reads therefore never
change an array, which a frozen snapshot cut may share (docs/storage.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .series import SeriesKey, SeriesLayout

__all__ = ["Pick", "Picker", "take"]


class Pick:
    """Where a query's ``n`` columns are in one array: ``src`` (array columns) hold query columns ``dst``.

    ``index`` is set when every query column is present: a slice when they are one ascending run (a view
    reads them), else an index array.
    """

    __slots__ = ("dst", "index", "n", "src")

    def __init__(self, n: int, src: list[int], dst: list[int]) -> None:
        self.n = n
        self.src = np.array(src, np.int64)
        self.dst = np.array(dst, np.int64)
        self.index: slice | np.ndarray | None = None
        if len(src) == n:
            if n and src == list(range(src[0], src[0] + n)):
                self.index = slice(src[0], src[0] + n)
            else:
                self.index = self.src

    @property
    def complete(self) -> bool:
        return self.index is not None


class Picker:
    """Resolves the :class:`Pick` of a query's ``keys`` per (layout, array width), caching each."""

    __slots__ = ("_cache", "keys")

    def __init__(self, keys: Sequence[SeriesKey]) -> None:
        self.keys = list(keys)
        # id(layout) → (layout, {width: Pick}); the layout is kept so its id cannot be reused meanwhile
        self._cache: dict[int, tuple[SeriesLayout, dict[int, Pick]]] = {}

    def pick(self, layout: SeriesLayout, width: int) -> Pick:
        entry = self._cache.get(id(layout))
        if entry is None:
            entry = self._cache[id(layout)] = (layout, {})
        by_width = entry[1]
        p = by_width.get(width)
        if p is None:
            src: list[int] = []
            dst: list[int] = []
            for k, key in enumerate(self.keys):
                c = layout.get(key)
                if c is not None and c < width:
                    src.append(c)
                    dst.append(k)
            p = by_width[width] = Pick(len(self.keys), src, dst)
        return p


def take(a: np.ndarray, p: Pick, fill: float, axis: int = 0) -> np.ndarray:
    """The query's columns of ``a`` along ``axis`` (0 or 1), ``fill`` where absent; ``a`` is only read."""
    if p.index is not None:
        return a[p.index] if axis == 0 else a[:, p.index]
    shape = list(a.shape)
    shape[axis] = p.n
    out = np.full(shape, fill, a.dtype)
    if len(p.src):
        if axis == 0:
            out[p.dst] = a[p.src]
        else:
            out[:, p.dst] = a[:, p.src]
    return out
