"""Drive workerhub with the real clearml SDK (run by tests/test_clearml_clients.py in a subprocess).

The SDK keeps process-wide state (config, Session class attributes), so each scenario gets a fresh process.
Reads the server URL and credentials from the CLEARML_* environment the test sets; writes what the SDK's
typed response classes parsed, as JSON, to $WORKERHUB_SCENARIO_OUT.
"""

from __future__ import annotations

import datetime
import json
import os
from typing import Any

import jwt
import requests
from clearml.backend_api.session.client import APIClient

T0 = 1_700_000_000_000  # ms
# (offset s, cpu_usage per core, memory_used, task): buckets of 60 s start at T0 - 20 s.
REPORTS = [
    (0, [10, 20], 1000, "t1"),
    (30, [30, 40], 3000, "t1"),
    (65, [50, 60], 2000, None),
    (130, [70], 4000, "t1"),
]
RANGE = {"from_date": T0 / 1000 - 60, "to_date": T0 / 1000 + 300, "interval": 60}


def listed(response: Any, field: str) -> list[Any]:
    """APIClient hands back a one-field response as that field's list (TableResponse); else the typed object."""
    inner = getattr(response, "response", response)
    return list(inner) if isinstance(inner, list) else getattr(inner, field)


def stats(response: Any) -> list[list[Any]]:
    """Flatten a typed GetStatsResponse: [worker, metric, variant, dates, {aggregation: values}]."""
    out = []
    assert type(response.response).__name__ in ("GetStatsResponse", "list"), type(response.response)
    for w in listed(response, "workers"):
        for m in w.metrics:
            out.append(
                [w.worker, m.metric, m.variant, m.dates, {str(s.aggregation): s.values for s in m.stats}]
            )
    return out


def series(s: Any) -> dict[str, list[int]]:
    assert all(isinstance(v, int) for v in s.dates + s.counts), (s.dates, s.counts)
    return {"dates": s.dates, "counts": s.counts}


def main() -> dict[str, Any]:
    client = APIClient()
    session = client.session
    out: dict[str, Any] = {"api_version": session.api_version}
    token = session.token
    out["identity"] = jwt.decode(token, options={"verify_signature": False})["identity"]
    w = client.workers

    w.register(worker="sdk-w1", timeout=600, queues=[], tags=["sdk"], system_tags=["sys"])
    for offset, cpu, memory, task in REPORTS:
        machine_stats = {"cpu_usage": cpu, "memory_used": memory, "gpu_usage": [float(len(cpu))]}
        # every status_report replaces both tag lists (absent clears them), so a worker resends its tags
        w.status_report(
            worker="sdk-w1",
            timestamp=T0 + offset * 1000,
            task=task,
            machine_stats=machine_stats,
            tags=["sdk"],
            system_tags=["sys"],
        )

    workers = listed(w.get_all(last_seen=0), "workers")
    out["workers"] = [
        {
            "id": x.id,
            "user": x.user.id,
            "company": x.company.id,
            "tags": x.tags,
            "system_tags": x.system_tags,
            "task": x.task.id if x.task else None,
            "running_time_is_int": isinstance(x.task.running_time, int) if x.task else None,
            "times_are_datetimes": all(
                isinstance(t, datetime.datetime)
                for t in (x.register_time, x.last_activity_time, x.last_report_time)
            ),
        }
        for x in workers
    ]
    keys = listed(w.get_metric_keys(worker_ids=["sdk-w1"]), "categories")
    out["metric_keys"] = [[c.name, c.metric_keys] for c in keys]
    items = [
        {"key": "cpu_usage", "category": "avg"},
        {"key": "cpu_usage", "category": "max"},
        {"key": "memory_used", "category": "min"},
    ]
    out["stats_pooled"] = stats(
        w.get_stats(worker_ids=["sdk-w1"], items=items, split_by_variant=False, **RANGE)
    )
    out["stats_split"] = stats(
        w.get_stats(worker_ids=["sdk-w1"], items=items[:1], split_by_variant=True, **RANGE)
    )
    activity = w.get_activity_report(**RANGE)
    out["activity"] = {"total": series(activity.total), "active": series(activity.active)}
    # get_all's tags / system_tags filters (API 2.20 / 2.22), as the SDK sends them at its 2.23
    w.register(worker="sdk-other", timeout=600, tags=["other"])
    w.register(worker="sdk-bare", timeout=600)
    filters = {
        "tags=sdk,other": {"tags": ["sdk", "other"]},
        "tags=-sdk": {"tags": ["-sdk"]},
        "system_tags=sys": {"system_tags": ["sys"]},
        "tags=sdk system_tags=-sys": {"tags": ["sdk"], "system_tags": ["-sys"]},
        "tags=__$all,other": {"tags": ["__$all", "other"]},
    }
    out["filtered"] = {
        name: sorted(x.id for x in listed(w.get_all(last_seen=3600, **f), "workers"))
        for name, f in filters.items()
    }
    w.unregister(worker="sdk-other")
    w.unregister(worker="sdk-bare")
    w.unregister(worker="sdk-w1")
    out["after_unregister"] = [x.id for x in listed(w.get_all(last_seen=0), "workers")]

    # Move the server's clock past the token's lifetime: the next call gets 401/30, and the SDK must log in
    # again by itself and retry successfully.
    r = requests.post(
        os.environ["CLEARML_API_HOST"] + "/debug.advance_clock",
        json={"seconds": 31 * 86400},
        headers={"Authorization": "Bearer " + token},
        timeout=10,
    )
    r.raise_for_status()
    w.register(worker="sdk-w2", timeout=60)
    out["after_relogin"] = [x.id for x in listed(w.get_all(last_seen=0), "workers")]
    out["token_renewed"] = session.token != token
    w.unregister(worker="sdk-w2")
    return out


if __name__ == "__main__":
    result = main()
    with open(os.environ["WORKERHUB_SCENARIO_OUT"], "w") as f:
        json.dump(result, f)
