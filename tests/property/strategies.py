"""Hypothesis strategies for reports and stats queries, biased towards the edges that break bucketing.

Values are mostly multiples of 1/4 of moderate size (sums are then exact in float64, so avg compares
exactly however the implementation groups its additions) with some arbitrary positive floats (no
cancellation, so rel_tol=1e-9 holds). Timestamps cluster around a base so that buckets hold several
records, land on bucket edges, repeat, and arrive out of order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from .reference import LIST_FIELDS, SCALAR_FIELDS

WORKER_IDS = ("w0", "w1", "w2", "w10", "B", "a")
"""Few ids, so reports collide; "w10" < "w2" and "B" < "a" exercise string ordering."""

UNKNOWN_IDS = ("ghost", "w3")

AGGREGATIONS = ("avg", "min", "max")

STAT_KEYS = LIST_FIELDS + SCALAR_FIELDS + ("gpu_fraction", "bogus")
"""Known metric keys plus two that never have data (the agent's gpu_fraction is dropped upstream)."""

SECOND = 1000
DAY_MS = 86_400 * SECOND

values = st.one_of(
    st.integers(-1000, 1000).map(lambda q: q / 4),
    st.integers(0, 4_000_000).map(lambda q: q / 4),
    st.floats(min_value=1e-3, max_value=1e6, allow_nan=False, allow_infinity=False),
    st.just(0),
    st.just(0.0),
)
"""One machine_stats number; zeros are frequent because falsy fields are skipped whole (Q2)."""

list_values = st.one_of(
    st.lists(values, max_size=3),
    st.lists(values, min_size=10, max_size=12),  # variants "10", "11": "10" < "2" as strings
    st.lists(st.just(0), max_size=2),
    st.none(),
)


@st.composite
def machine_stats(draw: st.DrawFn) -> dict[str, Any] | None:
    """A valid machine_stats object: some known fields (falsy ones included), maybe unknown keys."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from([None, {}]))
    lists = draw(st.lists(st.sampled_from(LIST_FIELDS), max_size=3, unique=True))
    scalars = draw(st.lists(st.sampled_from(SCALAR_FIELDS), max_size=4, unique=True))
    out: dict[str, Any] = {}
    for field in lists:
        out[field] = draw(list_values)
    for field in scalars:
        out[field] = draw(st.one_of(values, st.none(), st.booleans()))
    if draw(st.booleans()):
        out[draw(st.sampled_from(["gpu_fraction", "foo", "cpu", "memory"]))] = draw(values)
    return out


@dataclass(frozen=True)
class Report:
    """What one status_report carries, before flattening; ``company`` / ``user`` pick the caller."""

    worker: str
    timestamp: int
    task: str | None
    machine_stats: dict[str, Any] | None
    company: str = "c1"
    user: str = "u1"


tasks = st.sampled_from([None, None, "t1", "t2", ""])
"""A task absent, set, or the empty string (no task for status_report, yet "active" for the report)."""


@st.composite
def timeline(draw: st.DrawFn) -> tuple[int, list[int]]:
    """``(base ms, timestamps ms)``: a cluster around ``base``, shuffled, with repeats and edge values."""
    base = draw(
        st.one_of(
            st.just(0),
            st.integers(0, 4_000_000_000).map(lambda s: s * SECOND),  # whole seconds, as agents send
            st.integers(0, 4_000_000_000).map(lambda s: s * SECOND),
            st.integers(0, 4_000_000_000_000),
        )
    )
    offsets = st.one_of(
        st.integers(0, 120).map(lambda s: s * SECOND),
        st.tuples(st.integers(-2, 120), st.sampled_from([0, 1, 500, 998, 999])).map(lambda p: p[0] * SECOND + p[1]),
        st.integers(0, 120_000),
        st.integers(0, 3 * DAY_MS),
        st.integers(-5 * SECOND, 5 * SECOND),
        st.sampled_from([0, 999, 1000, 59_999, 60_000, 3_599_999, 3_600_000, DAY_MS - 1, DAY_MS]),
    )
    stamps = [base + o for o in draw(st.lists(offsets, min_size=1, max_size=8))]
    # the first and last millisecond of a drawn second: where the inclusive range bounds cut
    for t in list(stamps):
        if draw(st.booleans()):
            stamps.append(t - t % SECOND + draw(st.sampled_from([-1, 0, 999])))
    return base, stamps


@st.composite
def reports(
    draw: st.DrawFn, companies: tuple[str, ...] = ("c1",), users: tuple[str, ...] = ("u1",)
) -> tuple[int, list[Report]]:
    """``(base ms, reports)`` from several workers, timestamps out of order and repeated."""
    base, stamps = draw(timeline())
    n = draw(st.integers(0, 24))
    out = []
    for _ in range(n):
        out.append(
            Report(
                worker=draw(st.sampled_from(WORKER_IDS)),
                timestamp=draw(st.sampled_from(stamps)),
                task=draw(tasks),
                machine_stats=draw(machine_stats()),
                company=draw(st.sampled_from(companies)),
                user=draw(st.sampled_from(users)),
            )
        )
    return base, out


intervals = st.one_of(
    st.integers(1, 120),
    st.sampled_from([1, 7, 10, 45, 60, 90, 300, 600, 900, 3600, 7200, 21_600, 86_400, 604_800]),
    st.integers(1, 10 * 86_400),
)
"""Seconds: small and odd ones, the multiples a rollup tier would use, and up to ten days."""


@st.composite
def date_range(draw: st.DrawFn, base_ms: int, stamps: list[int] = ()) -> tuple[float, float]:  # type: ignore[assignment]
    """``(from_date, to_date)`` in seconds, from < to, fractional at times.

    Bounds are mostly anchored on the seconds of drawn timestamps, so records sit exactly on the
    inclusive edges (``int(from) * 1000`` and ``int(to) * 1000 + 999`` ms) as often as just outside them.
    """
    if draw(st.integers(0, 9)) == 0:
        return 0, 10_000_000_000  # everything
    seconds = sorted({t // SECOND for t in stamps}) or [base_ms // SECOND]
    near = st.one_of(
        st.sampled_from([-1, 0, 0, 1]),
        st.sampled_from([-1, 0, 0, 1]),
        st.sampled_from([-1, 0, 0, 1]),
        st.integers(-130, 130),
        st.integers(-4 * 86_400, 4 * 86_400),
    )
    fraction = st.sampled_from([0, 0, 0, 0.25, 0.5, 0.999])
    span = st.one_of(
        st.integers(1, 300),
        st.integers(1, 8 * 86_400),
        st.sampled_from([0.001, 0.5, 1, 59, 60, 61, 3600, 86_400]),
    )
    from_date = max(0, draw(st.sampled_from(seconds)) + draw(near)) + draw(fraction)
    how = draw(st.sampled_from(["last-ms", "anchor", "span"]))
    if how == "last-ms":
        # the second whose last millisecond holds a record: the inclusive upper edge of the range
        last_ms = [t // SECOND for t in stamps if t % SECOND == 999] or seconds
        to_date = draw(st.sampled_from(last_ms)) + draw(st.sampled_from([0, 0, 0, -1])) + draw(fraction)
    elif how == "anchor":
        to_date = max(0, draw(st.sampled_from(seconds)) + draw(near)) + draw(fraction)
    else:
        to_date = from_date + draw(span)
    if to_date <= from_date:
        to_date = from_date + draw(span)
    return from_date, to_date


stat_items = st.lists(
    st.tuples(st.sampled_from(STAT_KEYS), st.sampled_from(AGGREGATIONS)), min_size=1, max_size=6
)

worker_subsets = st.one_of(
    st.just([]),
    st.lists(st.sampled_from(WORKER_IDS + UNKNOWN_IDS), min_size=1, max_size=4),
)
"""Empty (all workers) or a few ids, unknown ones and repeats included."""
