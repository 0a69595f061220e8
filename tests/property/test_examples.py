"""Example tests for bugs the property suite found in the core (each one failed before its fix)."""

from __future__ import annotations

import pytest

from workerhub.errors import FieldsValueError
from workerhub.messages import ActivityQuery
from workerhub.stats import WorkerHistory, activity_report
from workerhub.stats.aggregate import MAX_BUCKETS as MAX_ACTIVITY_BUCKETS


@pytest.mark.parametrize("fixed", [False, True])
def test_activity_report_refuses_a_bucket_explosion(fixed: bool) -> None:
    """Zero-filled series over a huge span with a 1 s interval used to allocate gigabytes (or die)."""
    history = WorkerHistory()
    history.add(1_000, True, [("cpu_usage", "0", 1.0)], 0.0)
    history.add(2_000_000_000_000, True, [("cpu_usage", "0", 1.0)], 0.0)
    with pytest.raises(FieldsValueError, match="interval"):
        activity_report([history], ActivityQuery(0, 2_100_000_000, 1), fixed=fixed)
    # a coarse enough interval still answers
    interval = 2_100_000_000 // MAX_ACTIVITY_BUCKETS + 1
    report = activity_report([history], ActivityQuery(0, 2_100_000_000, interval), fixed=fixed)
    assert report["total"]["counts"][0] == 1
