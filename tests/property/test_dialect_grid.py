"""Both dialects against the brute-force reference, through the endpoint table: random reports, then
get_stats / get_activity_report bodies at random path versions (or none) on hubs with random
``max_api_version``; the version actually served picks the 2.4 answer or the 2.32 grid (reference.py).

Calls go through :func:`workerhub.api.endpoints.dispatch` (the transports' own entry, after routing), so
the dialect choice, request parsing and both query paths are the real ones.
"""

from __future__ import annotations

from typing import Any

import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from workerhub.actors import open_hub
from workerhub.api.endpoints import CallContext, dispatch, resolve
from workerhub.clock import Clock
from workerhub.config import Settings
from workerhub.errors import FieldsValueError, ValidationError
from workerhub.messages import Identity, StatusReport
from workerhub.stats import flatten_machine_stats
from workerhub.stats.jobs import MAX_BUCKETS

from . import reference as ref
from .compare import WALL_START, assert_same, records_of
from .strategies import Report, date_range, intervals, reports, stat_items, worker_subsets

VERSIONS = st.sampled_from(["", "v2.4/", "v2.23/", "v2.31/", "v2.32/", "v2.34/", "v9.0/"])
MAX_VERSIONS = st.sampled_from(["2.34", "2.34", "2.4", "2.31", "2.32"])
WHO = Identity("c1", "u1")


def served(path_version: str, max_version: str) -> tuple[int, int]:
    raw = path_version.strip("/v") or max_version
    return min(tuple(map(int, raw.split("."))), tuple(map(int, max_version.split("."))))  # type: ignore[return-value]


@st.composite
def calls(draw: st.DrawFn, base: int, stamps: list[int], max_version: str) -> tuple[str, str, dict[str, Any]]:
    from_date, to_date = draw(date_range(base, stamps))
    body: dict[str, Any] = {"from_date": from_date, "to_date": to_date, "interval": draw(intervals)}
    version = draw(VERSIONS)
    if draw(st.booleans()):
        if served(version, max_version) < (2, 32):
            # The 2.4 answer lists only buckets with data, but the hub budgets the buckets of the data's
            # whole hours and UTC days (stats/jobs.py), so a tiny interval over a long range may be refused
            # where the reference answers: stay within MAX_BUCKETS over the range, as test_aggregation does.
            smallest = (int(to_date) - int(from_date) + 1) // (MAX_BUCKETS - 2) + 1
            body["interval"] = max(smallest, body["interval"])
        body["items"] = [{"key": k, "aggregation": a} for k, a in draw(stat_items)]
        body["worker_ids"] = draw(worker_subsets)
        body["split_by_resource"] = draw(st.booleans())
        body["split_by_variant"] = draw(st.booleans())
        return version, "workers.get_stats", body
    return version, "workers.get_activity_report", body


def expected(records: list[dict[str, Any]], name: str, body: dict[str, Any], head: bool) -> Any:
    """The reference's ``data``, or the error class the hub must raise."""
    f, t, i = body["from_date"], body["to_date"], body["interval"]
    if name == "workers.get_activity_report":
        if not head:
            old = ref.get_activity_report(records, f, t, i)
            too_long = any(len(series["dates"]) > ref.MAX_GRID for series in old.values())
            return FieldsValueError if too_long else old
        try:
            return ref.get_activity_report_232(records, f, t, i)
        except ref.GridTooLarge:
            return FieldsValueError
    items = [(it["key"], it["aggregation"]) for it in body["items"]]
    if not head:
        return {
            "workers": ref.get_stats(records, f, t, i, items, body["worker_ids"], body["split_by_variant"])
        }
    if any(key not in ref.HEAD_KEYS for key, _ in items):
        return ValidationError
    try:
        return {
            "workers": ref.get_stats_232(
                records, f, t, i, items, body["worker_ids"], body["split_by_resource"]
            )
        }
    except ref.GridTooLarge:
        return FieldsValueError


def run(rs: list[Report], max_version: str, queries: list[tuple[str, str, dict[str, Any]]]) -> list[Any]:
    async def main() -> list[Any]:
        async with open_hub(
            Settings(max_api_version=max_version), clock=Clock(wall_at_start=WALL_START)
        ) as hub:
            for r in rs:
                samples = flatten_machine_stats(r.machine_stats)
                await hub.status_report(
                    StatusReport(r.worker, r.timestamp, task=r.task, samples=samples), identity=WHO
                )
            out: list[Any] = []
            for version, name, body in queries:
                name, requested = resolve(f"/{version}{name}", max_version)
                try:
                    out.append(await dispatch(hub, name, body, CallContext(identity=WHO), requested))
                except (FieldsValueError, ValidationError) as exc:
                    out.append(type(exc))
            return out

    return trio.run(main, clock=trio.testing.MockClock())


@given(st.data(), reports(), MAX_VERSIONS)
@settings(max_examples=max(20, settings().max_examples // 2))
def test_both_dialects_match_the_reference(
    data: st.DataObject, drawn: tuple[int, list[Report]], max_version: str
) -> None:
    base, rs = drawn
    stamps = [r.timestamp for r in rs]
    queries = [data.draw(calls(base, stamps, max_version)) for _ in range(4)]
    records = records_of(rs)
    got = run(rs, max_version, queries)
    for (version, name, body), actual in zip(queries, got):
        head = served(version, max_version) >= (2, 32)
        want = expected(records, name, body, head)
        if isinstance(want, type):
            assert actual is want, (version, name, body, actual)
        else:
            assert_same(actual, want, f"{version}{name}")


@st.composite
def edge_calls(draw: st.DrawFn, stamps: list[int]) -> tuple[str, str, dict[str, Any]]:
    """2.32 calls whose ``to_date`` sits on the 90 % cut (or a hair either side), split per GPU."""
    interval = draw(st.sampled_from([1, 40, 45, 60, 600, 3600]))
    step = max(interval, 40)
    anchor = draw(st.sampled_from(stamps)) // 1000 if stamps else 0
    key_s = max(anchor // step * step + draw(st.integers(-2, 3)) * step, 0)
    to_date = key_s + 0.9 * step + draw(st.sampled_from([0, 0, -0.001, 0.001, -0.1, 0.5]))
    from_date = max(0, key_s - draw(st.integers(0, 6)) * step + draw(st.sampled_from([0, 0, 1, step - 1])))
    if from_date >= to_date:
        from_date = 0
    items = [{"key": k, "aggregation": a} for k, a in draw(stat_items)]
    items.append({"key": draw(st.sampled_from(["gpu_usage", "gpu_temperature"])), "aggregation": "avg"})
    body = {
        "from_date": from_date,
        "to_date": to_date,
        "interval": interval,
        "split_by_resource": True,
        "items": items,
    }
    if draw(st.booleans()):
        return (
            "v2.34/",
            "workers.get_activity_report",
            {k: body[k] for k in ("from_date", "to_date", "interval")},
        )
    return "v2.34/", "workers.get_stats", {**body, "worker_ids": [], "split_by_variant": False}


@given(st.data(), reports())
@settings(max_examples=max(20, settings().max_examples // 2))
def test_grid_edges_match_the_reference(data: st.DataObject, drawn: tuple[int, list[Report]]) -> None:
    _base, rs = drawn
    many_gpus = data.draw(st.lists(st.integers(0, 100), min_size=10, max_size=12))
    if rs:  # one report with a dozen GPUs, so resource series order "10" after "9"
        r = rs[0]
        rs = [
            Report(r.worker, r.timestamp, r.task, {"gpu_usage": many_gpus, "gpu_temperature": many_gpus[:2]}),
            *rs,
        ]
    queries = [data.draw(edge_calls([r.timestamp for r in rs])) for _ in range(4)]
    records = records_of(rs)
    for (_version, name, body), actual in zip(queries, run(rs, "2.34", queries)):
        want = expected(records, name, body, head=True)
        if isinstance(want, type):
            assert actual is want, (name, body, actual)
        else:
            assert_same(actual, want, name)
