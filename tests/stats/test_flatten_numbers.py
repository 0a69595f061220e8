"""flatten_machine_stats: the fast path for plain floats must accept and refuse exactly what _number does."""

from __future__ import annotations

import math

import pytest

from workerhub.errors import ValidationError
from workerhub.stats.flatten import flatten_machine_stats


def test_list_values_of_every_numeric_kind() -> None:
    got = flatten_machine_stats({"cpu_usage": [1, 2.5, True, 0.0, -0.0]})
    assert got == (
        ("cpu_usage", "0", 1.0),
        ("cpu_usage", "1", 2.5),
        ("cpu_usage", "2", 1.0),
        ("cpu_usage", "3", 0.0),
        ("cpu_usage", "4", -0.0),
    )
    assert all(type(v) is float for _m, _v, v in got)


def test_long_lists_get_string_indexes_beyond_the_cache() -> None:
    got = flatten_machine_stats({"cpu_usage": [1.0] * 300})
    assert [v for _m, v, _x in got] == [str(i) for i in range(300)]


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan, 10**400, "1", None, [1.0]])
def test_non_finite_or_non_numbers_are_400_12(bad: object) -> None:
    with pytest.raises(ValidationError) as info:
        flatten_machine_stats({"gpu_usage": [1.0, bad]})
    assert "machine_stats.gpu_usage" in str(info.value)


def test_huge_int_scalar_is_a_validation_error_not_a_crash() -> None:
    with pytest.raises(ValidationError):
        flatten_machine_stats({"memory_used": 10**400})
