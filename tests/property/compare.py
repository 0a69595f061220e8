"""Helpers shared by the property tests: exact comparison with the reference model, and reports as its
records."""

from __future__ import annotations

import math
from typing import Any

from . import reference as ref
from .strategies import Report

__all__ = ["WALL_START", "assert_same", "records_of"]

WALL_START = 1_700_000_000.0
"""The hubs' wall clock at start (epoch seconds) in the property tests that run a real hub."""


def assert_same(actual: Any, expected: Any, path: str = "") -> None:
    """Equal structure and order; floats within 1e-9 relative, every other leaf equal and of equal type."""
    if isinstance(expected, float):
        assert isinstance(actual, float), f"{path}: {actual!r} is not a float"
        assert math.isclose(actual, expected, rel_tol=1e-9), f"{path}: {actual!r} != {expected!r}"
    elif isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: {actual!r} is not an object"
        assert list(actual) == list(expected), f"{path}: keys {list(actual)} != {list(expected)}"
        for key in expected:
            assert_same(actual[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{path}: {actual!r} is not a list"
        if actual == expected and all(type(e) is int for e in expected) and all(type(a) is int for a in actual):
            return  # fast path for long date / count lists
        assert len(actual) == len(expected), f"{path}: {actual!r} != {expected!r}"
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_same(a, e, f"{path}[{i}]")
    else:
        assert type(actual) is type(expected) and actual == expected, f"{path}: {actual!r} != {expected!r}"


def records_of(rs: list[Report], record_zero: bool = False) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for r in rs:
        out.extend(ref.make_records(r.worker, r.timestamp, r.task, r.machine_stats, record_zero))
    return out
