"""The retention memory estimate agrees with what a history really stores."""

from __future__ import annotations

from workerhub import Settings
from workerhub.stats import WorkerHistory
from workerhub.stats.footprint import estimate_bytes, retention_footprint

_HALF_DAY_MS = 43_200_000


def _day_of_reports() -> dict:
    h = WorkerHistory()
    names = [(f"fp{k}", "0") for k in range(24)]
    for r in range(8640):  # 24 h at 10 s, starting at noon so it straddles two UTC days as a live one does
        samples = [(m, v, float(r)) for m, v in names]
        h.add(_HALF_DAY_MS + r * 10_000, r % 2 == 0, samples, written_at=r * 10.0)
    return h.to_state()


def test_estimate_matches_the_bytes_a_day_of_reports_stores() -> None:
    state = _day_of_reports()
    raw = sum(len(ts) + len(task) + len(vals) for _h, _w, _p, ts, task, vals in state["chunks"])
    tiers = sum(sum(len(a) for a in arrays) for _s, _w, *arrays in state["days"])
    est = retention_footprint(Settings(raw_retention=86400.0 - 3600, tier_retention=0.0), 1)
    assert 1.0 <= est.raw / raw <= 1.15, (est.raw, raw)
    assert 1.0 <= est.tiers / tiers <= 1.15, (est.tiers, tiers)


def test_estimate_scales_with_workers_and_retention() -> None:
    base = retention_footprint(Settings(), 1000)
    assert retention_footprint(Settings(), 2000).total == 2 * base.total
    longer = retention_footprint(Settings(raw_retention=2 * 86400.0), 1000)
    assert 1.9 < longer.raw / base.raw < 2.0
    assert base.tiers > base.raw  # 30 days of rollups outweigh 24 h of raw rows


def test_one_function_sizes_the_stats() -> None:
    fp = retention_footprint(Settings(), 1000)
    assert fp.raw + fp.tiers == estimate_bytes(1000, raw_retention_s=86400.0, tier_retention_s=30 * 86400.0)
