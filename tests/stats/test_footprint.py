"""The retention memory estimate agrees with what a history really stores."""

from __future__ import annotations

from workerhub import Settings
from workerhub.stats import WorkerHistory
from workerhub.stats.footprint import retention_footprint


def test_estimate_matches_the_bytes_a_day_of_reports_stores() -> None:
    h = WorkerHistory()
    names = [(f"m{k}", "0") for k in range(24)]
    for r in range(8640):  # 24 h at 10 s
        h.add(r * 10_000, r % 2 == 0, [(m, v, float(r)) for m, v in names], written_at=r * 10.0)
    stored = sum(
        len(ts) + len(task) + sum(len(col[2]) for col in cols)
        for _start, _written, ts, task, cols in h.to_state()["chunks"]
    )
    est = retention_footprint(Settings(raw_retention=86400.0 - 3600), 1)
    assert 1.0 <= est.raw / stored <= 1.15, (est.raw, stored)


def test_estimate_scales_with_workers_and_retention() -> None:
    base = retention_footprint(Settings(), 1000)
    assert retention_footprint(Settings(), 2000).total == 2 * base.total
    longer = retention_footprint(Settings(raw_retention=2 * 86400.0), 1000)
    assert 1.9 < longer.raw / base.raw < 2.0
