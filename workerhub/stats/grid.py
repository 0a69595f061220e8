"""get_stats and get_activity_report as API 2.32+ answers them: every bucket of an epoch-aligned grid over
``[from_date, to_date]``, zero-filled (api-versions §4.5, §4.6).

Built on the 2.4 queries of :mod:`.jobs`: the non-empty buckets they return (pooled over variants,
or split per variant for ``resource_series``) are placed onto the grid, and every other bucket is 0.

* Interval ``I = max(interval, 40)`` s; grid keys ``k = n * I`` ms from ``floor(int(from_date) * 1000 / I)``
  to ``floor(int(to_date) * 1000 / I)``, records selected as at 2.4 (``int(from)*1000 ..= int(to)*1000+999``).
* get_stats drops the last grid bucket when ``k_last >= (to_date - 0.9 * I) * 1000`` (an incomplete bucket);
  the activity report always drops it (upstream compares ms with seconds, as at 2.4).
* A grid longer than :data:`~.jobs.MAX_BUCKETS` is refused with 400/16 naming ``interval`` (upstream's
  Elasticsearch fails with a 500 on ``too_many_buckets``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from ..errors import FieldsValueError
from ..messages import ActivityQuery, StatsItem, StatsQuery
from .history import WorkerHistory
from .jobs import MAX_BUCKETS, ActivityJob, StatsJob

__all__ = [
    "MAX_GRID_VALUES",
    "MIN_INTERVAL",
    "ActivityGridJob",
    "Grid",
    "StatsGridJob",
    "activity_grid",
    "activity_grid_of",
    "stats_grid",
    "stats_grid_of",
]

MIN_INTERVAL = 40
"""Seconds: the smallest chart interval since server v1.16/v1.17 (``min_chart_interval_sec``)."""

MAX_GRID_VALUES = 20_000_000
"""Most values one zero-filled get_stats answer may hold (grid × stats of every worker, GPU series
included): ~160 MB of floats before encoding. Elasticsearch caps buckets × workers likewise (max_buckets)."""

_EMPTY_SERIES: dict[str, list[int]] = {"dates": [], "counts": []}


class Grid:
    """``n`` bucket keys (epoch ms) from ``first``, ``step`` ms apart."""

    __slots__ = ("first", "n", "step")

    def __init__(self, first: int, step: int, n: int) -> None:
        if n > MAX_BUCKETS:
            raise FieldsValueError(
                f"interval too small: the grid would span {n} buckets, at most {MAX_BUCKETS}",
                field="interval",
            )
        self.first, self.step, self.n = first, step, max(n, 0)

    def dates(self) -> list[int]:
        return list(range(self.first, self.first + self.n * self.step, self.step))

    def fill(self, dates: Sequence[int], values: Sequence[float]) -> list[float]:
        """``values`` at ``dates`` placed on the grid, 0.0 elsewhere (dates off the grid are left out)."""
        out = np.zeros(self.n, np.float64)
        if len(dates):
            idx = (np.asarray(dates, np.int64) - self.first) // self.step
            inside = (idx >= 0) & (idx < self.n)
            out[idx[inside]] = np.asarray(values, np.float64)[inside]
        filled: list[float] = out.tolist()
        return filled

    def holds(self, dates: Sequence[int]) -> bool:
        """Whether any of ``dates`` is a bucket of the grid."""
        return any(0 <= (d - self.first) // self.step < self.n for d in dates)


def stats_grid_of(from_date: float, to_date: float, interval: int) -> Grid:
    """The 2.32 get_stats grid: the last bucket dropped when it is incomplete by the 90 % rule."""
    step = max(interval, MIN_INTERVAL) * 1000
    first = (int(from_date) * 1000 // step) * step
    last = (int(to_date) * 1000 // step) * step
    if last >= (to_date - 0.9 * step / 1000) * 1000:
        last -= step
    return Grid(first, step, (last - first) // step + 1)


def activity_grid_of(from_date: float, to_date: float, interval: int, *, fixed: bool = False) -> Grid:
    """The 2.32 activity grid: the last bucket always dropped (``fixed``: only when incomplete)."""
    if fixed:
        return stats_grid_of(from_date, to_date, interval)
    step = max(interval, MIN_INTERVAL) * 1000
    first = (int(from_date) * 1000 // step) * step
    last = (int(to_date) * 1000 // step) * step - step
    return Grid(first, step, (last - first) // step + 1)


def _resource_order(name: str) -> tuple[int, str]:
    return (int(name), "") if name.isdigit() else (1 << 30, name)


class StatsGridJob:
    """One 2.32 get_stats, in slices: the 2.4 :class:`~.jobs.StatsJob` s it rests on (pooled, and per GPU
    for ``split_by_resource``) run by :meth:`steps`, then placed on the grid by :meth:`result`.

    Workers sorted by id; under each, the requested keys it has records of in the range, in request
    order; under each key one stat per distinct aggregation in request order, all on the same ``dates``.
    ``resource_series`` is always present: per GPU (``"0"``, ``"1"``, ... in numeric order) for ``gpu_*``
    keys when ``split_by_resource`` and at least two GPUs reported in the kept buckets, else ``[]``.
    """

    def __init__(
        self, histories: Mapping[str, WorkerHistory], query: StatsQuery, *, max_values: int | None = None
    ) -> None:
        self._grid = grid = stats_grid_of(query.from_date, query.to_date, query.interval)
        self._items = items = tuple(dict.fromkeys(StatsItem(i.key, i.aggregation) for i in query.items))
        pooled_q = StatsQuery(query.from_date, query.to_date, grid.step // 1000, items, query.worker_ids)
        self._pooled = StatsJob(histories, pooled_q, max_values=max_values)
        gpu_items = tuple(i for i in items if i.key.startswith("gpu_"))
        self._split: StatsJob | None = None
        if query.split_by_resource and gpu_items and grid.n:
            split_q = replace(pooled_q, items=gpu_items, split_by_variant=True)
            self._split = StatsJob(histories, split_q, max_values=max_values)

    def steps(self) -> Iterator[None]:
        """Evaluate one slice of workers per ``next()``."""
        yield from self._pooled.steps()
        if self._split is not None:
            yield from self._split.steps()

    def run(self) -> list[dict[str, Any]]:
        """Every step at once (callers that need not yield)."""
        for _ in self.steps():
            pass
        return self.result()

    def result(self) -> list[dict[str, Any]]:
        """The ``workers`` list (after every step ran)."""
        grid, items = self._grid, self._items
        pooled = self._pooled.result()
        per_resource: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for w in self._split.result() if self._split is not None else ():
            for m in w["metrics"]:
                if grid.holds(m["dates"]):
                    per_resource.setdefault((w["worker"], m["metric"]), []).append(m)
        n_series = sum(len(m["stats"]) for w in pooled for m in w["metrics"])
        n_series += sum(len(m["stats"]) for ms in per_resource.values() for m in ms)
        if n_series * grid.n > MAX_GRID_VALUES:
            raise FieldsValueError(
                f"interval too small: the answer would hold {n_series} series of {grid.n} buckets, "
                f"at most {MAX_GRID_VALUES} values",
                field="interval",
            )
        key_order = {key: n for n, key in enumerate(dict.fromkeys(i.key for i in items))}
        dates = grid.dates()
        out = []
        for w in sorted(pooled, key=lambda w: w["worker"]):
            metrics = []
            for m in sorted(w["metrics"], key=lambda m: key_order[m["metric"]]):
                found = per_resource.get((w["worker"], m["metric"]), ())
                variants = sorted(found, key=lambda v: _resource_order(v["variant"]))
                if len(variants) < 2:
                    variants = []
                stats = []
                for n, stat in enumerate(m["stats"]):
                    series = [
                        {"name": v["variant"], "values": grid.fill(v["dates"], v["stats"][n]["values"])}
                        for v in variants
                    ]
                    stats.append(
                        {
                            "aggregation": stat["aggregation"],
                            "dates": dates,
                            "values": grid.fill(m["dates"], stat["values"]),
                            "resource_series": series,
                        }
                    )
                metrics.append({"metric": m["metric"], "stats": stats})
            out.append({"worker": w["worker"], "metrics": metrics})
        return out


def stats_grid(
    histories: Mapping[str, WorkerHistory], query: StatsQuery, *, max_values: int | None = None
) -> list[dict[str, Any]]:
    """The 2.32 get_stats ``workers`` list, in one go (see :class:`StatsGridJob`)."""
    return StatsGridJob(histories, query, max_values=max_values).run()


class ActivityGridJob:
    """One 2.32 get_activity_report, in slices: a 2.4 :class:`~.jobs.ActivityJob` over every bucket at the
    grid's interval, then placed on the grid (which drops the last bucket).

    Both series are empty when the company holds no stats at all (upstream: no stats index). ``fixed``
    (the ``fix_quirks`` setting): the last bucket is dropped only when incomplete.
    """

    def __init__(self, histories: Sequence[WorkerHistory], query: ActivityQuery, *, fixed: bool = False) -> None:
        self._job: ActivityJob | None = None
        if histories:  # a company without stats answers empty series, whatever the range
            self._grid = grid = activity_grid_of(query.from_date, query.to_date, query.interval, fixed=fixed)
            if grid.n:
                self._job = ActivityJob(histories, replace(query, interval=grid.step // 1000), fixed=True)

    def steps(self) -> Iterator[None]:
        """Evaluate one slice of workers per ``next()``."""
        if self._job is not None:
            yield from self._job.steps()

    def run(self) -> dict[str, dict[str, list[int]]]:
        """Every step at once (callers that need not yield)."""
        for _ in self.steps():
            pass
        return self.result()

    def result(self) -> dict[str, dict[str, list[int]]]:
        """``{"total": {"dates", "counts"}, "active": {...}}`` (after every step ran)."""
        if self._job is None:
            return {"total": dict(_EMPTY_SERIES), "active": dict(_EMPTY_SERIES)}
        got, grid = self._job.result(), self._grid
        dates = grid.dates()
        out = {}
        for name in ("total", "active"):
            counts = grid.fill(got[name]["dates"], got[name]["counts"])
            out[name] = {"dates": list(dates), "counts": [int(c) for c in counts]}
        return out


def activity_grid(
    histories: Sequence[WorkerHistory], query: ActivityQuery, *, fixed: bool = False
) -> dict[str, dict[str, list[int]]]:
    """The 2.32 get_activity_report, in one go (see :class:`ActivityGridJob`)."""
    return ActivityGridJob(histories, query, fixed=fixed).run()
