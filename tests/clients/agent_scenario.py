"""Drive workerhub with the real clearml-agent session and resource monitor (run in a subprocess by
tests/test_clearml_clients.py). Writes what the agent got back, as JSON, to $WORKERHUB_SCENARIO_OUT."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import requests
from clearml_agent.helper.resource_monitor import ResourceMonitor
from clearml_agent.session import Session

WORKER = "agent-host:gpu0"
# What the agent's monitor really sends: floats rounded to 3 decimals where the schema says integer, a
# one-element cpu_usage list, disk_free_home in percent.
STATS = [
    {
        "cpu_usage": [12.345],
        "memory_used": 1024.5,
        "memory_free": 2048.25,
        "disk_free_home": 55.5,
        "network_rx": 0.5,
    },
    {
        "cpu_usage": [22.345],
        "memory_used": 2048.5,
        "memory_free": 1024.25,
        "disk_free_home": 55.0,
        "network_rx": 1.5,
    },
]


class _Session(Session):
    def create_cache_folders(self, slot_index: int = 0) -> None:  # keeps $HOME untouched
        pass


def main() -> dict[str, Any]:
    session = _Session()
    out: dict[str, Any] = {
        "api_version": session.api_version,
        "feature_set": session.feature_set,
        "user_id": session.user_id,
    }
    token = session.token
    start = int(time.time())
    out["register"] = session.get(service="workers", action="register", worker=WORKER, queues=[])
    monitor = ResourceMonitor(session, worker_id=WORKER, worker_tags=["cpu-only", "x"], report_daemon=True)
    out["reports_ok"] = [monitor.send_report(s) for s in STATS]
    workers = session.get(service="workers", action="get_all", last_seen=0)["workers"]
    out["workers"] = [
        {"id": w["id"], "tags": w.get("tags"), "user": w["user"]["id"], "timeout": w["register_timeout"]}
        for w in workers
    ]
    # The agent's calls are unversioned: today's API, with its get_all filters and get_count.
    out["filtered"] = {
        name: [w["id"] for w in session.get(service="workers", action="get_all", last_seen=0, **f)["workers"]]
        for name, f in {"cpu-only": {"tags": ["cpu-only"]}, "-x": {"tags": ["-x"]}}.items()
    }
    out["count"] = session.get(service="workers", action="get_count", tags=["x"])
    # Two whole days from the day the reports fall in: the 2.32 grid keeps both buckets.
    day = start - start % 86400
    out["day"] = day
    query = {"from_date": day, "to_date": day + 2 * 86400 - 1, "interval": 86400, "worker_ids": [WORKER]}
    items = [
        {"key": k, "aggregation": "avg"} for k in ("cpu_usage", "memory_used", "disk_free_home", "network_rx")
    ]
    out["stats"] = session.get(service="workers", action="get_stats", items=items, **query)
    out["final_report_ok"] = monitor.send_report()  # machine_stats null, as the agent's stop() sends
    out["unregister"] = session.get(service="workers", action="unregister", worker=WORKER, queues=[])

    # Token lifetime passes on the server: the agent's next call gets 401, re-logs in and retries.
    r = requests.post(
        session.host + "/debug.advance_clock",
        json={"seconds": 31 * 86400},
        headers={"Authorization": "Bearer " + token},
        timeout=10,
    )
    r.raise_for_status()
    out["after_relogin"] = session.get(service="workers", action="get_all", last_seen=0)
    out["token_renewed"] = session.token != token
    return out


if __name__ == "__main__":
    result = main()
    with open(os.environ["WORKERHUB_SCENARIO_OUT"], "w") as f:
        json.dump(result, f)
