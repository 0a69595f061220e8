"""The ingest fast paths give exactly what the general paths give, on hostile input too.

* ``flatten_report`` fits a report to the template of its key order; the general ``flatten_machine_stats``
  decides every field. Same records (values of the same type), same errors (message and field), and a
  shape and values that are the records' own.
* ``parse_status_report`` reads a plain dict body without per-field calls; any other mapping takes the
  field-by-field path. Same report or same error.
* ``WorkerHistory.add_flat`` (the parser's shape and values) stores exactly what ``add`` of the records does,
  for shapes whose columns are consecutive in the worker's layout and for those that are not.
"""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import Any

import msgpack
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from workerhub.api.parse import parse_status_report
from workerhub.errors import ValidationError
from workerhub.stats.flatten import (
    LIST_FIELDS,
    SCALAR_FIELDS,
    _fitted,
    _templates,
    flatten_machine_stats,
    flatten_report,
)
from workerhub.stats.history import WorkerHistory

_F32_MAX = 3.4028234663852886e38

numbers = st.one_of(
    st.floats(),  # nan, +-inf, huge, -0.0
    st.floats(-1e6, 1e6),
    st.sampled_from([0, 0.0, -0.0, 1, True, False, _F32_MAX, -_F32_MAX, 3.5e38, 2**64, 10**40, -(10**400)]),
    st.integers(-(2**70), 2**70),
    st.floats(-100, 100).map(np.float64),  # a float subclass
)
junk = st.sampled_from([None, "1", [1.0], {"a": 1}, b"x"])
list_values = st.one_of(
    st.lists(st.one_of(numbers, numbers, junk), max_size=4),
    st.lists(st.floats(0, 100), min_size=1, max_size=4),  # the agent's usual list
    st.lists(st.floats(0, 100), min_size=1, max_size=4).map(tuple),
    st.just([]),
    junk,
)
scalar_values = st.one_of(numbers, numbers, junk)
KEYS = sorted(LIST_FIELDS | SCALAR_FIELDS) + ["gpu_fraction", "foo"]


def _value(field: str) -> st.SearchStrategy[Any]:
    if field in LIST_FIELDS:
        return list_values
    if field in SCALAR_FIELDS:
        return scalar_values
    return st.one_of(numbers, junk)


floats = st.sampled_from([math.nan, math.inf, -math.inf, 3.5e38, -3.5e38, 1.0, -0.0, 0.0]) | st.floats()
plain = st.one_of(st.floats(-1e6, 1e6), st.integers(-(2**40), 2**40), st.sampled_from([0, 0.0, -0.0, 7]))


def _like(value: Any) -> st.SearchStrategy[Any]:
    """Plain numbers where ``value`` had some: a list of the same length, or a scalar (the fitted case)."""
    n = len(value) if isinstance(value, list) else -1
    if n >= 0:  # plain numbers, or floats of every kind (nan, inf, beyond float32)
        return st.lists(plain, min_size=n, max_size=n) | st.lists(floats, min_size=n, max_size=n)
    return plain | floats


def _agent(field: str) -> st.SearchStrategy[Any]:
    """What an agent sends: lists of plain numbers, plain scalars."""
    return st.lists(plain, min_size=1, max_size=4) if field in LIST_FIELDS else plain


def _outcome(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return ("ok", fn(*args, **kwargs))
    except ValidationError as exc:
        return ("error", exc.message, exc.details)


def _same_records(got: Any, expected: Any) -> None:
    assert got[0] == expected[0] == "ok" or got == expected, (got, expected)
    if got[0] != "ok":
        return
    records, want = got[1], expected[1]
    assert len(records) == len(want)
    for (m, v, x), (m2, v2, x2) in zip(records, want):
        assert (m, v) == (m2, v2)
        assert type(x) is float and type(x2) is float
        assert x == x2 and math.copysign(1, x) == math.copysign(1, x2), (x, x2)  # -0.0 stays -0.0


@settings(max_examples=300)  # cheap examples; the fitted path's own checks need a few hundred to be hit
@given(data=st.data(), record_zero=st.booleans(), max_variants=st.sampled_from([2, 3, 1024]))
def test_fitted_report_equals_the_general_path(data: st.DataObject, record_zero: bool, max_variants: int) -> None:
    keys = data.draw(st.lists(st.sampled_from(KEYS), max_size=8, unique=True), label="keys")
    # A first report teaches the template of this key order (an agent-like one, when the draw allows)...
    first = {k: data.draw(st.one_of(_agent(k), _agent(k), _value(k)), label=f"first {k}") for k in keys}
    _outcome(flatten_report, first, record_zero=record_zero, max_variants=max_variants)
    # ...then reports with the same key order and anything in them are fitted to it, or fall back
    for _ in range(5):
        stats = {k: data.draw(st.one_of(_like(first[k]), _like(first[k]), _value(k)), label=k) for k in keys}
        got = _outcome(flatten_report, stats, record_zero=record_zero, max_variants=max_variants)
        expected = _outcome(flatten_machine_stats, stats, record_zero=record_zero, max_variants=max_variants)
        _same_records((got[0], got[1][0]) if got[0] == "ok" else got, expected)
        if got[0] == "ok":
            records, shape, values = got[1]
            assert shape.keys == tuple((m, v) for m, v, _x in records)
            assert list(values) == [x for _m, _v, x in records]


def test_an_agent_report_takes_the_fitted_path() -> None:
    stats = {"cpu_usage": [1.5, 2.0], "gpu_memory_used": [10, 20], "memory_used": 5.0, "disk_read": 0.0, "x": 1}
    flatten_report(stats)
    template = _templates[tuple(stats)]
    fitted = _fitted(stats, template, record_zero=False)
    assert fitted is not None
    assert fitted[0] == flatten_machine_stats(stats)
    assert fitted[1].keys == (("cpu_usage", "0"), ("cpu_usage", "1"), ("gpu_memory_used", "0"),
                              ("gpu_memory_used", "1"), ("memory_used", "total"))
    with_zero = _fitted(stats, template, record_zero=True)
    assert with_zero is not None and with_zero[0] == flatten_machine_stats(stats, record_zero=True)


strings = st.one_of(st.text(max_size=3), st.none(), st.integers(0, 3), st.just(["a"]))
string_lists = st.one_of(
    st.none(), st.lists(st.text(max_size=2), max_size=2), st.lists(st.text(max_size=2), max_size=2).map(tuple),
    st.just(["a", 1]), st.just("ab"), st.just([]),
)
timestamps = st.one_of(
    st.integers(-5, 253_402_300_799_999 + 5), st.integers(0, 2**64), st.just(True), st.just(1.5e12),
    st.just("1700000000000"), st.just("x"), st.none(), st.just(10**30), st.just(float("nan")),
)


@given(data=st.data(), record_zero=st.booleans())
def test_plain_body_parse_equals_the_field_by_field_path(data: st.DataObject, record_zero: bool) -> None:
    body: dict[str, Any] = {}
    for name, strategy in (
        ("worker", st.one_of(st.text(min_size=1, max_size=3), strings)),
        ("timestamp", timestamps),
        ("task", strings),
        ("queue", strings),
        ("queues", string_lists),
        ("tags", string_lists),
        ("system_tags", string_lists),
    ):
        if data.draw(st.integers(0, 5), label=f"has {name}"):
            body[name] = data.draw(strategy, label=name)
    keys = data.draw(st.lists(st.sampled_from(KEYS), max_size=6, unique=True), label="keys")
    if data.draw(st.booleans(), label="has machine_stats"):
        body["machine_stats"] = {k: data.draw(_value(k), label=k) for k in keys}
    for _ in range(2):  # the second time, the machine_stats template is known
        got = _outcome(parse_status_report, body, record_zero=record_zero)
        expected = _outcome(parse_status_report, MappingProxyType(body), record_zero=record_zero)
        assert got == expected
        if got[0] == "ok":
            report = got[1]
            assert report.shape is not None
            assert report.shape.keys == tuple((m, v) for m, v, _x in report.samples)
            assert list(report.values) == [x for _m, _v, x in report.samples]


agent_stats = st.fixed_dictionaries(
    {},
    optional={
        "cpu_usage": st.lists(st.sampled_from([0.0, 1.5, 2.25, 7.0, 0]), min_size=1, max_size=3),
        "gpu_usage": st.lists(st.sampled_from([0.5, 3.0, 9]), min_size=1, max_size=2),
        "memory_used": st.sampled_from([0, 0.0, 4.0, 8.5]),
        "network_rx": st.sampled_from([0.0, 1.25]),
    },
).map(lambda d: dict(sorted(d.items(), key=lambda kv: hash(kv[0]) % 7)))  # varied key orders too


@given(
    reports=st.lists(
        st.tuples(st.integers(0, 3 * 3_600_000), st.booleans(), agent_stats), min_size=1, max_size=25
    ),
    record_zero=st.booleans(),
)
def test_add_flat_stores_what_add_of_the_records_does(reports: list[Any], record_zero: bool) -> None:
    general, flat = WorkerHistory(), WorkerHistory()
    for i, (ts, task, stats) in enumerate(reports):
        records, shape, values = flatten_report(stats, record_zero=record_zero)
        general.add(ts, task, flatten_machine_stats(stats, record_zero=record_zero), float(i))
        flat.add_flat(ts, task, shape, values, float(i))
        flat._check()
    assert general.layout is flat.layout
    assert msgpack.packb(general.to_state()) == msgpack.packb(flat.to_state())
    assert len(general) == len(flat)


def test_what_the_fitted_path_leaves_to_the_general_one() -> None:
    stats = {"gpu_usage": [1.5, 2.0], "memory_free": 5.0}
    flatten_report(stats)
    template = _templates[tuple(stats)]
    for odd in (
        [math.nan, 2.0], [1.0, math.inf], [3.5e38, 1.0], [10**40, 1], [True, 1.0], (1.0, 2.0), [1.0], [1.0, "2"],
        [np.float64(1.0), 2.0],
    ):
        report = {"gpu_usage": odd, "memory_free": 5.0}
        assert _fitted(report, template, record_zero=False) is None, odd
        got = _outcome(lambda r: flatten_report(r)[0], report)
        assert got == _outcome(flatten_machine_stats, report), odd
    for odd_scalar in (math.nan, -math.inf, 10**40, True, None, "1", np.float64(2.0)):
        assert _fitted({"gpu_usage": [1.0, 2.0], "memory_free": odd_scalar}, template, record_zero=False) is None
    # a zero scalar fits: left out of the shape (Q2), or kept with record_zero
    dropped = _fitted({"gpu_usage": [1.0, 2.0], "memory_free": 0}, template, record_zero=False)
    kept = _fitted({"gpu_usage": [1.0, 2.0], "memory_free": 0}, template, record_zero=True)
    assert dropped is not None and dropped[1].keys == (("gpu_usage", "0"), ("gpu_usage", "1"))
    assert kept is not None and kept[0][-1] == ("memory_free", "total", 0.0) and type(kept[2][-1]) is float
