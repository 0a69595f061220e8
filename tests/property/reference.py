"""A brute-force reference model of the workers stats semantics, written to be obviously right.

It keeps every stat record as a plain dict in a list and answers each query with Python loops, straight
from the spec (workers-semantics §4.2, §6, §7, §8). It shares no code with ``workerhub.stats``: the
property tests compare the real hub against it, so a shared helper would hide a shared bug.

Units, as on the wire: record ``timestamp`` in epoch **milliseconds**; query ``from_date`` / ``to_date``
in epoch **seconds**; ``interval`` in seconds; every returned date in **milliseconds**.
"""

from __future__ import annotations

import struct
from typing import Any

__all__ = [
    "LIST_FIELDS",
    "SCALAR_FIELDS",
    "Invalid",
    "flatten",
    "make_records",
    "get_stats",
    "get_activity_report",
    "get_metric_keys",
    "get_stats_232",
    "get_activity_report_232",
    "GridTooLarge",
]

LIST_FIELDS = (
    "cpu_usage",
    "cpu_temperature",
    "gpu_usage",
    "gpu_temperature",
    "gpu_memory_free",
    "gpu_memory_used",
)
SCALAR_FIELDS = (
    "memory_used",
    "memory_free",
    "network_tx",
    "network_rx",
    "disk_free_home",
    "disk_free_temp",
    "disk_read",
    "disk_write",
)


class Invalid(Exception):
    """machine_stats holds a value of the wrong type (the API answers 400/12 naming the field)."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


def _is_number(value: Any) -> bool:
    # JSON numbers; booleans pass as upstream's FloatField lets them (spec §0.4)
    return isinstance(value, (int, float))


def _stored(value: Any) -> float:
    """The value as upstream stores it: an Elasticsearch ``float`` field, i.e. rounded to IEEE float32
    (spec Q10); everything read back (values, min, max, the terms of avg) is that rounded value."""
    return struct.unpack("<f", struct.pack("<f", float(value)))[0]


def flatten(machine_stats: dict[str, Any] | None, record_zero: bool = False) -> list[tuple[str, str, float]]:
    """machine_stats → ``[(metric, variant, value)]`` (spec §4.2).

    A falsy field (0, 0.0, [], null) is skipped whole, zeros inside a list are kept; a scalar gives
    variant "total", a list gives "0", "1", ...; unknown keys are dropped. ``record_zero`` (the fixed
    mode) keeps scalar zeros. Raises :class:`Invalid` for a value of the wrong type.
    """
    records: list[tuple[str, str, float]] = []
    if machine_stats is None:
        return records
    for field, value in machine_stats.items():
        if field in LIST_FIELDS:
            if value is None:
                continue
            if not isinstance(value, list):
                raise Invalid(field)
            for item in value:
                if not _is_number(item):
                    raise Invalid(field)
            for index, item in enumerate(value):
                records.append((field, str(index), float(item)))
        elif field in SCALAR_FIELDS:
            if value is None:
                continue
            if not _is_number(value):
                raise Invalid(field)
            if not value and not record_zero:
                continue
            records.append((field, "total", float(value)))
    return records


def make_records(
    worker: str, timestamp: int, task: str | None, machine_stats: dict[str, Any] | None, record_zero: bool = False
) -> list[dict[str, Any]]:
    """The stat records one status_report writes: one dict per flattened value."""
    records = []
    for metric, variant, value in flatten(machine_stats, record_zero):
        records.append(
            {
                "worker": worker,
                "timestamp": timestamp,
                "task": task,
                "category": metric.split("_")[0],
                "metric": metric,
                "variant": variant,
                "value": _stored(value),
            }
        )
    return records


def _in_range(records: list[dict[str, Any]], from_date: float, to_date: float) -> list[dict[str, Any]]:
    # spec §7: both bounds truncated to whole seconds, the upper one inclusive to the end of its second
    low = int(from_date) * 1000
    high = int(to_date) * 1000 + 999
    return [r for r in records if low <= r["timestamp"] <= high]


def _bucket(timestamp: int, interval: int) -> int:
    step = interval * 1000
    return (timestamp // step) * step


def _count_then_name(counts: dict[str, int]) -> list[str]:
    names = list(counts)
    names.sort()
    names.sort(key=lambda name: counts[name], reverse=True)  # stable: ties stay by name
    return names


def _series(records: list[dict[str, Any]], interval: int, aggregations: list[str]) -> dict[str, Any]:
    values_by_bucket: dict[int, list[float]] = {}
    for r in records:
        values_by_bucket.setdefault(_bucket(r["timestamp"], interval), []).append(r["value"])
    dates = sorted(values_by_bucket)
    stats = []
    for aggregation in aggregations:
        values = []
        for date in dates:
            bucket = values_by_bucket[date]
            if aggregation == "avg":
                values.append(sum(bucket) / len(bucket))
            elif aggregation == "min":
                values.append(min(bucket))
            else:
                values.append(max(bucket))
        stats.append({"aggregation": aggregation, "values": values})
    return {"dates": dates, "stats": stats}


def get_stats(
    records: list[dict[str, Any]],
    from_date: float,
    to_date: float,
    interval: int,
    items: list[tuple[str, str]],
    worker_ids: list[str] = (),  # type: ignore[assignment]
    split_by_variant: bool = False,
) -> list[dict[str, Any]]:
    """The ``workers`` list of get_stats (spec §7); ``items`` are ``(key, aggregation)`` pairs.

    Only non-empty buckets; avg/min/max over every record of a bucket; variants pooled unless split;
    workers, metrics and variants ordered by record count descending, then by name; one stats entry per
    distinct aggregation of a key, in request order (Q19); no truncation to 10 (Q8).
    """
    aggregations: dict[str, list[str]] = {}
    for key, aggregation in items:
        aggregations.setdefault(key, [])
        if aggregation not in aggregations[key]:
            aggregations[key].append(aggregation)
    selected = []
    for r in _in_range(records, from_date, to_date):
        if r["metric"] not in aggregations:
            continue
        if worker_ids and r["worker"] not in worker_ids:
            continue
        selected.append(r)

    worker_counts: dict[str, int] = {}
    for r in selected:
        worker_counts[r["worker"]] = worker_counts.get(r["worker"], 0) + 1
    out = []
    for worker in _count_then_name(worker_counts):
        mine = [r for r in selected if r["worker"] == worker]
        metric_counts: dict[str, int] = {}
        for r in mine:
            metric_counts[r["metric"]] = metric_counts.get(r["metric"], 0) + 1
        metrics = []
        for metric in _count_then_name(metric_counts):
            of_metric = [r for r in mine if r["metric"] == metric]
            if not split_by_variant:
                entry = {"metric": metric}
                entry.update(_series(of_metric, interval, aggregations[metric]))
                metrics.append(entry)
                continue
            variant_counts: dict[str, int] = {}
            for r in of_metric:
                variant_counts[r["variant"]] = variant_counts.get(r["variant"], 0) + 1
            for variant in _count_then_name(variant_counts):
                of_variant = [r for r in of_metric if r["variant"] == variant]
                entry = {"metric": metric, "variant": variant}
                entry.update(_series(of_variant, interval, aggregations[metric]))
                metrics.append(entry)
        out.append({"worker": worker, "metrics": metrics})
    return out


def _distinct_workers(records: list[dict[str, Any]], interval: int) -> dict[int, int]:
    workers: dict[int, set[str]] = {}
    for r in records:
        workers.setdefault(_bucket(r["timestamp"], interval), set()).add(r["worker"])
    return {date: len(ids) for date, ids in workers.items()}


def _activity_series(
    records: list[dict[str, Any]], from_date: float, to_date: float, interval: int, fixed: bool
) -> dict[str, list[int]]:
    step = interval * 1000
    counts = _distinct_workers(records, interval)
    if fixed:
        # zero-filled over the whole range; the last bucket goes only when it starts after
        # to_date - 0.9 * interval (the cut-off upstream intended, with its units made consistent)
        first = _bucket(int(from_date) * 1000, interval)
        last = _bucket(int(to_date) * 1000 + 999, interval)
        if last > (to_date - 0.9 * interval) * 1000:
            last -= step
    else:
        # 2.4: first..last non-empty bucket, zeros between, and the last bucket always dropped (Q3)
        if not counts:
            return {"dates": [], "counts": []}
        first = min(counts)
        last = max(counts) - step
    dates = []
    values = []
    date = first
    while date <= last:
        dates.append(date)
        values.append(counts.get(date, 0))
        date += step
    return {"dates": dates, "counts": values}


def get_activity_report(
    records: list[dict[str, Any]], from_date: float, to_date: float, interval: int, fixed: bool = False
) -> dict[str, dict[str, list[int]]]:
    """get_activity_report (spec §8): distinct workers per bucket, all records and records with a task.

    "Active" means the record's task is not None (an empty-string task counts, as upstream).
    """
    selected = _in_range(records, from_date, to_date)
    active = [r for r in selected if r["task"] is not None]
    return {
        "total": _activity_series(selected, from_date, to_date, interval, fixed),
        "active": _activity_series(active, from_date, to_date, interval, fixed),
    }


def get_metric_keys(records: list[dict[str, Any]], worker_ids: list[str] = ()) -> list[dict[str, Any]] | None:  # type: ignore[assignment]
    """get_metric_keys (spec §6) over all records; ``None`` where the hub answers 400/1005."""
    selected = [r for r in records if not worker_ids or r["worker"] in worker_ids]
    if not selected:
        return None
    category_counts: dict[str, int] = {}
    metric_counts: dict[str, dict[str, int]] = {}
    for r in selected:
        category_counts[r["category"]] = category_counts.get(r["category"], 0) + 1
        per_metric = metric_counts.setdefault(r["category"], {})
        per_metric[r["metric"]] = per_metric.get(r["metric"], 0) + 1
    return [
        {"name": category, "metric_keys": _count_then_name(metric_counts[category])}
        for category in _count_then_name(category_counts)
    ]


# --- API 2.32+ (api-versions §4.5, §4.6): the zero-filled grid ---------------------------------------------

MIN_INTERVAL = 40
MAX_GRID = 65_535  # buckets in one series, as Elasticsearch caps a histogram (search.max_buckets)
HEAD_KEYS = LIST_FIELDS + SCALAR_FIELDS + ("gpu_fraction",)


class GridTooLarge(Exception):
    """The grid has more buckets than the hub serves (it answers 400/16 naming interval)."""


def _grid(first: int, last: int, step: int) -> list[int]:
    dates = []
    date = first
    while date <= last:
        dates.append(date)
        if len(dates) > MAX_GRID:
            raise GridTooLarge
        date += step
    return dates


def get_stats_232(
    records: list[dict[str, Any]],
    from_date: float,
    to_date: float,
    interval: int,
    items: list[tuple[str, str]],
    worker_ids: list[str] = (),  # type: ignore[assignment]
    split_by_resource: bool = False,
) -> list[dict[str, Any]]:
    """get_stats at API 2.32+: every bucket of ``floor(from)..floor(to)`` at ``max(interval, 40)`` s, the
    last one dropped when it starts at or after ``to_date - 0.9 * I``; 0.0 where no record fell; workers
    by id, keys in request order, distinct aggregations in request order; ``resource_series`` per GPU
    (by number) for ``gpu_*`` keys when split and at least two GPUs have records in the kept buckets."""
    step = max(interval, MIN_INTERVAL) * 1000
    first = (int(from_date) * 1000 // step) * step
    last = (int(to_date) * 1000 // step) * step
    if last >= (to_date - 0.9 * step / 1000) * 1000:
        last -= step
    dates = _grid(first, last, step)
    aggregations: dict[str, list[str]] = {}
    for key, aggregation in items:
        if aggregation not in aggregations.setdefault(key, []):
            aggregations[key].append(aggregation)
    selected = [
        r
        for r in _in_range(records, from_date, to_date)
        if r["metric"] in aggregations and (not worker_ids or r["worker"] in worker_ids)
    ]

    def series(rs: list[dict[str, Any]], aggregation: str) -> list[float]:
        by_date: dict[int, list[float]] = {}
        for r in rs:
            by_date.setdefault((r["timestamp"] // step) * step, []).append(r["value"])
        out = []
        for date in dates:
            bucket = by_date.get(date)
            if not bucket:
                out.append(0.0)
            elif aggregation == "avg":
                out.append(sum(bucket) / len(bucket))
            else:
                out.append(min(bucket) if aggregation == "min" else max(bucket))
        return out

    out = []
    for worker in sorted({r["worker"] for r in selected}):
        metrics = []
        for key, aggs in aggregations.items():
            mine = [r for r in selected if r["worker"] == worker and r["metric"] == key]
            if not mine:
                continue
            resources: list[str] = []
            if split_by_resource and key.startswith("gpu_"):
                kept = {r["variant"] for r in mine if (r["timestamp"] // step) * step in set(dates)}
                resources = sorted(kept, key=int) if len(kept) > 1 else []
            stats = []
            for aggregation in aggs:
                stats.append(
                    {
                        "aggregation": aggregation,
                        "dates": dates,
                        "values": series(mine, aggregation),
                        "resource_series": [
                            {"name": v, "values": series([r for r in mine if r["variant"] == v], aggregation)}
                            for v in resources
                        ],
                    }
                )
            metrics.append({"metric": key, "stats": stats})
        out.append({"worker": worker, "metrics": metrics})
    return out


def get_activity_report_232(
    records: list[dict[str, Any]], from_date: float, to_date: float, interval: int
) -> dict[str, dict[str, list[int]]]:
    """get_activity_report at API 2.32+: distinct workers per bucket of the whole range at
    ``max(interval, 40)`` s, zero-filled, the last bucket always dropped; both series empty while the
    company has no stats at all (``records`` are all of its records, any time)."""
    empty = {"total": {"dates": [], "counts": []}, "active": {"dates": [], "counts": []}}
    step = max(interval, MIN_INTERVAL) * 1000
    first = (int(from_date) * 1000 // step) * step
    last = (int(to_date) * 1000 // step) * step - step
    if not records or last < first:
        return empty
    dates = _grid(first, last, step)
    selected = _in_range(records, from_date, to_date)
    out = {}
    for name, rs in (("total", selected), ("active", [r for r in selected if r["task"] is not None])):
        workers: dict[int, set[str]] = {}
        for r in rs:
            workers.setdefault((r["timestamp"] // step) * step, set()).add(r["worker"])
        out[name] = {"dates": dates, "counts": [len(workers.get(d, ())) for d in dates]}
    return out
