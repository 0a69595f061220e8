"""Small helpers shared by the endpoint tests: a fixed, interval-aligned epoch and one-line calls.

Times: ``BASE_S`` is epoch **seconds**, aligned to 3600 (so to every interval used here); report
timestamps are epoch **milliseconds** (``ms(offset_s)``), as ClearML agents send them.
"""

from __future__ import annotations

from typing import Any

from .conftest import JsonApi

BASE_S = 1_699_999_200
"""2023-11-14T22:00:00Z: a multiple of 3600 s, so buckets of 10, 60 or 3600 s start exactly here."""


def ms(offset_s: float = 0) -> int:
    """Epoch ms of ``BASE_S + offset_s``."""
    return round((BASE_S + offset_s) * 1000)


def report(
    api: JsonApi, worker: str, ts_ms: int, machine_stats: dict[str, Any] | None = None, **fields: Any
) -> None:
    """One successful status_report."""
    body: dict[str, Any] = {"worker": worker, "timestamp": ts_ms, **fields}
    if machine_stats is not None:
        body["machine_stats"] = machine_stats
    assert api.ok("workers.status_report", body) == {}


def get_stats(
    api: JsonApi,
    items: list[dict[str, Any]] | str,
    *,
    start: float = -3600,
    end: float = 3600,
    interval: int = 60,
    **fields: Any,
) -> list[dict[str, Any]]:
    """get_stats over ``[BASE_S + start, BASE_S + end]``; ``items`` may be a single key (avg)."""
    if isinstance(items, str):
        items = [{"key": items}]
    body = {
        "from_date": BASE_S + start,
        "to_date": BASE_S + end,
        "interval": interval,
        "items": items,
        **fields,
    }
    return api.ok("workers.get_stats", body)["workers"]


def activity(api: JsonApi, *, start: float = -3600, end: float = 3600, interval: int = 60) -> dict[str, Any]:
    body = {"from_date": BASE_S + start, "to_date": BASE_S + end, "interval": interval}
    return api.ok("workers.get_activity_report", body)


def workers(api: JsonApi, last_seen: Any = 0) -> dict[str, dict[str, Any]]:
    """get_all as ``{id: worker}`` (no activity filter by default)."""
    listed = api.ok("workers.get_all", {"last_seen": last_seen})["workers"]
    return {w["id"]: w for w in listed}


def worker_ids(api: JsonApi, **body: Any) -> list[str]:
    return [w["id"] for w in api.ok("workers.get_all", body)["workers"]]
