"""The 2.32 get_stats answer is bounded: grid × series beyond MAX_GRID_VALUES is 400/16 naming interval."""

from __future__ import annotations

import pytest

from workerhub.errors import FieldsValueError
from workerhub.messages import StatsItem, StatsQuery
from workerhub.stats import WorkerHistory, grid

T = 1_700_000_000


def test_a_huge_answer_is_refused_naming_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    histories = {}
    for w in range(3):
        h = histories[f"w{w}"] = WorkerHistory()
        h.add(T * 1000, False, (("gpu_usage", "0", 1.0), ("gpu_usage", "1", 2.0)), T)
    query = StatsQuery(T, T + 40 * 10, 40, (StatsItem("gpu_usage", "avg"),), split_by_resource=True)
    # 3 workers × (1 pooled + 2 GPU series) × 10 buckets = 90 values
    monkeypatch.setattr(grid, "MAX_GRID_VALUES", 90)
    assert len(grid.stats_grid(histories, query)) == 3
    monkeypatch.setattr(grid, "MAX_GRID_VALUES", 89)
    with pytest.raises(FieldsValueError, match="interval") as info:
        grid.stats_grid(histories, query)
    assert info.value.details == {"field": "interval"}
