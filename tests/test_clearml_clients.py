"""The real ClearML clients against workerhub: clearml 2.1 SDK (APIClient) and clearml-agent 3.0 (Session and
ResourceMonitor), in open and credentials mode, over real HTTP on a free port.

Each scenario runs in a subprocess (scripts in ``tests/clients/``): both packages keep process-wide state
(loaded config, class-level session attributes), so a fresh interpreter per scenario is the reliable way to
switch servers and credentials. The clients are configured as wire §8 says: a temp config file through
``CLEARML_CONFIG_FILE`` with low retries and no waiting on maintenance, so a broken server fails in seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from workerhub.testing import ServerHandle, running_server

pytest.importorskip("clearml")
pytest.importorskip("clearml_agent")

CLIENTS = Path(__file__).parent / "clients"
SDK_KEY = ("workerhub", "workerhub")  # as in `workerhub serve --auth workerhub:workerhub`
AGENT_KEY = ("agent-key", "agent-secret")
CREDENTIALS = ("workerhub:workerhub", "agent-key:agent-secret:acme:agent")

CONFIG = """
api {
  http {
    wait_on_maintenance_forever: false
    retries { total: 2, connect: 2, read: 2, redirect: 2, status: 2, backoff_factor: 0.1 }
  }
}
sdk { development { report_use_subprocess: false } }
"""

T0 = 1_700_000_000_000
B0, B1, B2 = 1_699_999_980_000, 1_700_000_040_000, 1_700_000_100_000  # the 60 s buckets of the reports


@pytest.fixture(scope="module", params=["open", "credentials"])
def mode_server(request: pytest.FixtureRequest) -> Iterator[tuple[str, ServerHandle]]:
    settings = {"auth": CREDENTIALS} if request.param == "credentials" else {}
    with running_server(**settings) as handle:
        yield request.param, handle


def client_env(url: str, key: tuple[str, str], tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment a client process gets: its own HOME and config file, this server, these keys."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    config = tmp_path / "clearml.conf"
    config.write_text(CONFIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLEARML_", "TRAINS_"))}
    env.update(
        HOME=str(home),
        CLEARML_CONFIG_FILE=str(config),
        CLEARML_API_HOST=url,
        CLEARML_WEB_HOST=url,
        CLEARML_FILES_HOST=url,
        CLEARML_API_ACCESS_KEY=key[0],
        CLEARML_API_SECRET_KEY=key[1],
        **extra,
    )
    return env


def run_scenario(
    script: str, url: str, key: tuple[str, str], tmp_path: Path, *, extra_env: dict[str, str] | None = None
) -> dict[str, Any]:
    out = tmp_path / f"{script}.json"
    env = client_env(url, key, tmp_path, WORKERHUB_SCENARIO_OUT=str(out), **(extra_env or {}))
    proc = subprocess.run(
        [sys.executable, str(CLIENTS / f"{script}.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return json.loads(out.read_text())


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_sdk_scenario(mode_server: tuple[str, ServerHandle], tmp_path: Path, method: str) -> None:
    mode, server = mode_server
    server.reset()
    key = SDK_KEY if mode == "credentials" else ("anyone", "anything")
    # GET with a JSON body is the clients' default; CLEARML_API_DEFAULT_REQ_METHOD switches them to POST.
    r = run_scenario(
        "sdk_scenario", server.url, key, tmp_path, extra_env={"CLEARML_API_DEFAULT_REQ_METHOD": method}
    )

    assert r["api_version"] == "2.23"
    assert (r["identity"]["company"], r["identity"]["user"]) == ("workerhub", "workerhub")
    assert r["workers"] == [
        {
            "id": "sdk-w1",
            "user": "workerhub",
            "company": "workerhub",
            "tags": ["sdk"],
            "system_tags": ["sys"],
            "task": "t1",
            "running_time_is_int": True,
            "times_are_datetimes": True,
        }
    ]
    assert r["metric_keys"] == [["cpu", ["cpu_usage"]], ["gpu", ["gpu_usage"]], ["memory", ["memory_used"]]]
    # Pooled: all cores together per 60 s bucket; the SDK's `category` picks the aggregation.
    # Pooled: all cores together per 60 s bucket; the SDK's `category` picks the aggregation, and items of
    # one key come back as one metric with a stats entry per aggregation.
    assert r["stats_pooled"] == [
        ["sdk-w1", "cpu_usage", None, [B0, B1, B2], {"avg": [25.0, 55.0, 70.0], "max": [40.0, 60.0, 70.0]}],
        ["sdk-w1", "memory_used", None, [B0, B1, B2], {"min": [1000.0, 2000.0, 4000.0]}],
    ]
    assert r["stats_split"] == [
        ["sdk-w1", "cpu_usage", "0", [B0, B1, B2], {"avg": [20.0, 50.0, 70.0]}],
        ["sdk-w1", "cpu_usage", "1", [B0, B1], {"avg": [30.0, 60.0]}],
    ]
    # Distinct reporting workers per bucket; `active` only counts reports with a task; last bucket dropped.
    assert r["activity"] == {
        "total": {"dates": [B0, B1], "counts": [1, 1]},
        "active": {"dates": [B0, B1], "counts": [1, 0]},
    }
    # the SDK's filters at its 2.23: OR within a field, `-` excludes, AND across fields, no operators
    assert r["filtered"] == {
        "tags=sdk,other": ["sdk-other", "sdk-w1"],
        "tags=-sdk": ["sdk-bare", "sdk-other"],
        "system_tags=sys": ["sdk-w1"],
        "tags=sdk system_tags=-sys": [],
        "tags=__$all,other": ["sdk-other"],
    }
    assert r["after_unregister"] == []
    assert r["after_relogin"] == ["sdk-w2"] and r["token_renewed"]


def test_agent_scenario(mode_server: tuple[str, ServerHandle], tmp_path: Path) -> None:
    mode, server = mode_server
    server.reset()
    key = AGENT_KEY if mode == "credentials" else ("anyone", "anything")
    r = run_scenario("agent_scenario", server.url, key, tmp_path)

    user = "agent" if mode == "credentials" else "workerhub"
    assert (r["api_version"], r["feature_set"], r["user_id"]) == ("2.23", "basic", user)
    assert r["register"] == {} and r["unregister"] == {}
    assert r["reports_ok"] == [True, True] and r["final_report_ok"] is True
    # register without a timeout: 600; the monitor's reports carry the worker tags (unversioned = 2.34)
    agent = {"id": "agent-host:gpu0", "tags": ["cpu-only", "x"], "user": user, "timeout": 600}
    assert r["workers"] == [agent]
    assert r["filtered"] == {"cpu-only": ["agent-host:gpu0"], "-x": []}
    assert r["count"] == {"count": 1}
    (worker,) = r["stats"]["workers"]
    assert worker["worker"] == "agent-host:gpu0"
    # The 2.32 shape: both reports in the first day-long bucket (they are milliseconds apart), the next
    # day zero-filled; floats came through as sent.
    dates = [r["day"] * 1000, (r["day"] + 86400) * 1000]

    def stat(value: float) -> list[dict[str, Any]]:
        return [{"aggregation": "avg", "dates": dates, "values": [value, 0.0], "resource_series": []}]

    assert {m["metric"]: m["stats"] for m in worker["metrics"]} == {
        "cpu_usage": stat(pytest.approx(17.345)),
        "memory_used": stat(1536.5),
        "disk_free_home": stat(55.25),
        "network_rx": stat(1.0),
    }
    assert r["after_relogin"] == {"workers": []} and r["token_renewed"]


def test_agent_list_command(mode_server: tuple[str, ServerHandle], tmp_path: Path) -> None:
    """`clearml-agent list` prints get_all's workers."""
    mode, server = mode_server
    server.reset()
    key = AGENT_KEY if mode == "credentials" else ("anyone", "anything")
    basic = httpx.BasicAuth(*key) if mode == "credentials" else None
    with httpx.Client(base_url=server.url, timeout=10) as http:
        token = http.get("/auth.login", auth=basic).json()["data"]["token"]
        r = http.post(
            "/workers.register", json={"worker": "box:1"}, headers={"Authorization": "Bearer " + token}
        )
        assert r.status_code == 200
    env = client_env(server.url, key, tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "clearml_agent", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "id: box:1" in proc.stdout and "register_timeout: 600" in proc.stdout


def test_wrong_credentials_are_refused_to_the_real_sdk(tmp_path: Path) -> None:
    with running_server(auth=CREDENTIALS) as server:
        env = client_env(server.url, ("workerhub", "wrong"), tmp_path)
        code = "from clearml.backend_api.session.client import APIClient; APIClient()"
        proc = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert proc.returncode != 0
        assert "401" in proc.stderr and "invalid credentials" in proc.stderr, proc.stderr[-2000:]
