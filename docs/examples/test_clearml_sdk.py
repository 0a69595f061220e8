"""The real clearml SDK against a workerhub test server (the second example of docs/testing.md).

Needs ``pip install workerhub pytest "clearml==2.1.*"``; skipped when clearml is not installed. The SDK finds
its server through ``CLEARML_*`` environment variables and a config file: the ``clearml_sdk`` fixture writes
a small config into a temp dir (low retries, so that a broken server fails the test in seconds) and points
everything at ``workerhub_url``. workerhub in open mode (the default) accepts any key/secret on auth.login.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from workerhub.testing import WorkerhubServer

pytest.importorskip("clearml", reason="the SDK example needs clearml: pip install 'clearml==2.1.*'")

CLEARML_CONF = """
api {
    credentials { access_key: "test-key", secret_key: "test-secret" }
    http {
        wait_on_maintenance_forever: false
        retries { total: 2, connect: 2, read: 2, status: 2, redirect: 2, backoff_factor: 0.1 }
    }
}
sdk { development { report_use_subprocess: false } }
"""


@pytest.fixture
def clearml_sdk(workerhub_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A logged-in ``APIClient`` talking to the test server."""
    conf = tmp_path / "clearml.conf"
    conf.write_text(CLEARML_CONF)
    monkeypatch.setenv("CLEARML_CONFIG_FILE", str(conf))
    for name in ("CLEARML_API_HOST", "CLEARML_WEB_HOST", "CLEARML_FILES_HOST"):
        monkeypatch.setenv(name, workerhub_url)
    monkeypatch.setenv("CLEARML_API_ACCESS_KEY", "test-key")
    monkeypatch.setenv("CLEARML_API_SECRET_KEY", "test-secret")
    from clearml.backend_api.session.client import APIClient  # imported once the environment is set

    return APIClient()  # calls auth.login on construction


def test_sdk_registers_reports_and_sees_expiry(clearml_sdk: Any, workerhub: WorkerhubServer) -> None:
    client = clearml_sdk
    client.workers.register(worker="sdk-worker", queues=["default"], timeout=600)
    client.workers.status_report(
        worker="sdk-worker",
        timestamp=1_700_000_410_000,  # epoch ms, as the agents send it
        machine_stats={"cpu_usage": [25.0, 75.0], "memory_used": 2048},
    )
    workers = client.workers.get_all(last_seen=0)  # a table of typed Worker objects
    assert [w.id for w in workers] == ["sdk-worker"]
    assert [q.id for q in workers[0].queues] == ["default"]

    keys = client.workers.get_metric_keys(worker_ids=["sdk-worker"]).categories
    assert {c.name: c.metric_keys for c in keys} == {"cpu": ["cpu_usage"], "memory": ["memory_used"]}

    workerhub.advance_clock(601)  # the SDK's worker has not reported for ten minutes: it is gone
    assert list(client.workers.get_all(last_seen=0)) == []
