"""The dashboard in a real browser (Chromium) against a real server holding a demo fleet's day of history.

Each test loads a view, asserts what is on screen (rows, chart series and point counts, the requests the
page makes) and that the page logged no error, and saves a screenshot.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from workerhub.client import HttpClient, StreamClient
from workerhub.testing import ServerHandle, running_demo, running_server

from .conftest import Page, open_page

WORKERS = 24
HOUR = 3600


@pytest.fixture(scope="module")
def fleet_server() -> Iterator[ServerHandle]:
    with (
        running_server(msgpack_port=0) as server,
        running_demo(server, WORKERS, backfill=24 * HOUR, step=300, seed=4),
    ):
        # a worker that reported for an hour and then left: only its history remains
        now = int(time.time())
        calls = [("workers.register", {"worker": "retired-box", "timeout": 60, "queues": ["old"]})]
        calls += [
            (
                "workers.status_report",
                {
                    "worker": "retired-box",
                    "timestamp": (now - 3 * HOUR + m * 60) * 1000,
                    "machine_stats": {"cpu_usage": [30.0 + m % 7, 50.0], "memory_used": 2048.0 + m},
                },
            )
            for m in range(60)
        ]
        calls.append(("workers.unregister", {"worker": "retired-box"}))
        with StreamClient(server.stream_url or "") as stream:
            assert all(r.ok for r in stream.call_many(calls))
        yield server


@pytest.fixture()
def page(browser: Any, fleet_server: ServerHandle, shots: Path) -> Iterator[Page]:
    tab = open_page(browser, fleet_server.url, shots)
    yield tab
    tab.page.context.close()
    assert tab.errors == [], tab.errors


def live(server: ServerHandle) -> list[dict[str, Any]]:
    return server.client.call("workers.get_all")["workers"]


def test_fleet_view_shows_the_fleet_and_its_activity(page: Page, fleet_server: ServerHandle) -> None:
    page.goto()
    series, points = page.points("activity")
    workers = live(fleet_server)
    page.page.wait_for_function(f"document.querySelectorAll('#workers-body tr').length === {len(workers)}")
    assert series == 2  # total and active
    assert 100 < points <= 600  # 24 h at 5 min buckets: 288 at most
    assert page.page.inner_text("#card-live") == str(len(workers))
    assert page.page.inner_text("#card-busy") == str(sum(1 for w in workers if w.get("task")))
    ids = page.page.locator("#workers-body tr td:first-child").all_inner_texts()
    assert ids == sorted((w["id"] for w in workers), key=_natural)
    (activity,) = page.calls("workers.get_activity_report")
    assert activity["to_date"] - activity["from_date"] == 24 * HOUR and activity["interval"] == 300
    page.screenshot("fleet")


def test_range_switch_queries_again(page: Page) -> None:
    page.goto()
    page.points("activity")
    page.page.click("#ranges button[data-range='1h']")
    page.page.wait_for_function("document.querySelector('#chart-activity').dataset.points <= 90")
    intervals = [c["interval"] for c in page.calls("workers.get_activity_report")]
    assert intervals == [300, 40]  # 24 h, then 1 h at 40 s buckets (the 2.32+ floor: 90 points)
    assert page.page.get_attribute("#ranges button[data-range='1h']", "aria-pressed") == "true"
    page.page.click("#ranges button[data-range='30d']")
    page.page.wait_for_function(
        "document.querySelectorAll('#ranges [aria-pressed=true]')[0].dataset.range === '30d'"
    )
    page.page.wait_for_timeout(300)
    assert page.calls("workers.get_activity_report")[-1]["interval"] == 7200  # 360 points over 30 days


def test_table_sorts_filters_and_pauses(page: Page) -> None:
    page.goto()
    rows = page.page.locator("#workers-body tr td:first-child")
    page.page.wait_for_selector("#workers-body tr")
    first = rows.all_inner_texts()
    page.page.click("th[data-key='id']")  # second click on the sorted column: descending
    assert rows.all_inner_texts() == first[::-1]
    assert page.page.get_attribute("th[data-key='id']", "aria-sort") == "descending"
    page.page.fill("#filter", "gpu-a100")
    shown = rows.all_inner_texts()
    assert shown and all("gpu-a100" in i for i in shown)
    assert page.page.inner_text("#workers-count").endswith(f"of {len(first)}")
    page.page.click("#pause")
    assert page.page.inner_text("#pause") == "Resume"


def test_worker_view_charts_and_per_core_series(page: Page, fleet_server: ServerHandle) -> None:
    gpu = next(w for w in live(fleet_server) if w["id"].startswith("gpu-a100"))
    page.goto()
    page.page.click(f"#workers-body a[href='#/worker/{gpu['id']}']")
    page.page.wait_for_url(f"**/#/worker/{gpu['id']}")
    page.page.wait_for_selector("#worker-status.live")
    for chart, lines in [
        ("cpu", 1),
        ("gpu", 1),
        ("gpu-memory", 1),
        ("memory", 2),
        ("network", 2),
        ("disk", 2),
    ]:
        series, points = page.points(chart)
        assert series == lines, chart
        assert 100 < points <= 600, chart
    assert "gpu_usage" in page.page.inner_text("#metric-keys")
    page.screenshot("worker")
    page.page.check("#chart-cpu >> xpath=.. >> input[type=checkbox]")
    cores = len(_stats(fleet_server, gpu["id"]))
    page.page.wait_for_function(f"document.querySelector('#chart-cpu').dataset.series === '{cores}'")
    # per core exists only in the 2.4 dialect; every other call is on 2.34
    split = page.calls("workers.get_stats", "v2.4")
    assert split and split[-1]["items"] == [{"key": "cpu_usage", "aggregation": "avg"}]
    assert split[-1]["split_by_variant"] is True
    assert page.calls("workers.get_stats") and not any("split_by_variant" in c for c in page.calls("workers.get_stats"))


def test_per_gpu_series_come_from_split_by_resource(page: Page, fleet_server: ServerHandle) -> None:
    gpu = next(w for w in live(fleet_server) if w["id"].startswith("gpu-a100"))
    gpus = len(_stats(fleet_server, gpu["id"], "gpu_usage"))
    assert gpus >= 4  # the demo's a100 machines have 4-8 GPUs
    page.goto(f"#/worker/{gpu['id']}")
    page.points("gpu")
    page.page.check("#chart-gpu >> xpath=.. >> input[type=checkbox]")
    page.page.wait_for_function(f"document.querySelector('#chart-gpu').dataset.series === '{gpus}'")
    split = [c for c in page.calls("workers.get_stats") if c.get("split_by_resource")]
    assert split and split[-1]["items"] == [{"key": "gpu_usage", "aggregation": "avg"}]
    assert page.calls("workers.get_stats", "v2.4") == []  # no per-core request: the CPU switch is off
    assert page.page.inner_text("#chart-gpu").count("#") == gpus  # one legend entry per GPU: #0, #1, ...
    page.screenshot("worker-per-gpu")


def test_a_server_below_2_32_serves_its_own_shape(browser: Any, shots: Path) -> None:
    # /v2.34/ is answered at the server's max (2.4 here): sparse buckets, one metric entry per variant
    with (
        running_server(msgpack_port=0, max_api_version="2.4") as server,
        running_demo(server, 4, backfill=6 * HOUR, step=300, seed=4),
    ):
        tab = open_page(browser, server.url, shots)
        tab.goto()
        series, points = tab.points("activity")
        assert series == 2 and 60 <= points <= 73  # 6 h of reports in 5 min buckets, within the 24 h
        tab.page.click("#workers-body a[href='#/worker/gpu-a100-000']")
        for chart in ("cpu", "gpu", "memory"):
            series, points = tab.points(chart)
            assert series == {"memory": 2}.get(chart, 1) and 60 <= points <= 73, chart
        tab.page.check("#chart-gpu >> xpath=.. >> input[type=checkbox]")
        # no resource_series below 2.32: the pooled series, labelled "all"
        tab.page.wait_for_function("document.querySelector('#chart-gpu').innerText.includes('all')")
        assert tab.page.get_attribute("#chart-gpu", "data-series") == "1"
        tab.screenshot("worker-2.4-server")
        tab.page.context.close()
        assert tab.errors == []


def test_expired_worker_shows_its_history(page: Page) -> None:
    page.goto("#/worker/retired-box")
    page.page.wait_for_selector("#worker-status.expired")
    assert "expired" in page.page.inner_text("#worker-status")
    series, points = page.points("cpu")
    assert series == 1 and 10 <= points <= 13  # an hour of reports in 5 min buckets, 3 h ago
    page.screenshot("expired")


def test_dark_mode_under_the_real_csp(browser: Any, fleet_server: ServerHandle, shots: Path) -> None:
    # with the page's Content-Security-Policy enforced: nothing the dashboard does violates it
    tab = open_page(browser, fleet_server.url, shots, scheme="dark", csp=True)
    tab.goto()
    tab.points("activity")
    tab.page.wait_for_selector("#workers-body tr")
    background = tab.page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(17, 20, 24)"
    tab.screenshot("fleet-dark")
    tab.page.click("#workers-body tr:first-child a")
    tab.points("cpu")
    tab.screenshot("worker-dark")
    tab.page.context.close()
    assert tab.errors == []


def test_a_thousand_workers_render_one_page(browser: Any, shots: Path) -> None:
    with running_server(msgpack_port=0) as server:
        with StreamClient(server.stream_url or "") as stream:
            replies = stream.call_many(
                ("workers.register", {"worker": f"node-{i:04d}", "queues": ["default"]}) for i in range(1000)
            )
            assert all(r.ok for r in replies)
        tab = open_page(browser, server.url, shots)
        tab.goto()
        tab.page.wait_for_selector("#workers-body tr")
        assert tab.page.locator("#workers-body tr").count() == 50
        assert tab.page.inner_text("#pager span") == "page 1 of 20"
        tab.page.click("#pager button:last-child")
        assert tab.page.inner_text("#workers-body tr:first-child td:first-child") == "node-0050"
        assert tab.page.inner_text("#card-live") == "1000"
        tab.page.context.close()
        assert tab.errors == []


def test_credentials_mode_login(browser: Any, shots: Path) -> None:
    creds = ("alice:alice-secret:acme", "bob:bob-secret:globex")
    with running_server(auth=creds, token_secret="x" * 32) as server:
        for key, secret, worker in (("alice", "alice-secret", "acme-1"), ("bob", "bob-secret", "globex-1")):
            basic = base64.b64encode(f"{key}:{secret}".encode()).decode()
            with httpx.Client(base_url=server.url) as http:
                token = http.post("/auth.login", headers={"Authorization": f"Basic {basic}"}).json()["data"][
                    "token"
                ]
                reply = http.post(
                    "/workers.register", json={"worker": worker}, headers={"Authorization": f"Bearer {token}"}
                )
                assert reply.status_code == 200
        tab = open_page(browser, server.url, shots)
        tab.goto()
        tab.page.wait_for_selector("#login:not([hidden])")
        # no fleet controls on the login screen: there is no fleet to range over yet
        assert all(tab.page.is_hidden(c) for c in ("#ranges", "#pause", "#updated", "#logout"))
        tab.page.fill("#access-key", "alice")
        tab.page.fill("#secret-key", "wrong")
        tab.page.click("#login-form button")
        tab.page.wait_for_function("document.querySelector('#login-message').textContent.includes('Wrong')")
        tab.screenshot("login")
        tab.page.fill("#secret-key", "alice-secret")
        tab.page.click("#login-form button")
        tab.page.wait_for_selector("#workers-body tr")
        assert all(tab.page.is_visible(c) for c in ("#ranges", "#pause", "#logout"))
        # each company sees only its own fleet
        assert tab.page.locator("#workers-body tr td:first-child").all_inner_texts() == ["acme-1"]
        assert tab.page.evaluate("sessionStorage.getItem('workerhub.token')")
        tab.page.reload()  # the token survives a reload of the tab
        tab.page.wait_for_selector("#workers-body tr")
        assert tab.page.is_hidden("#login")
        tab.page.click("#logout")
        tab.page.wait_for_selector("#login:not([hidden])")
        assert tab.page.evaluate("sessionStorage.getItem('workerhub.token')") is None
        tab.page.context.close()
        # the browser reports each 401 (the probe before login, the wrong secret) as a failed resource
        assert [e for e in tab.errors if "status of 401" not in e] == []


def test_static_files_and_api_on_the_same_port(fleet_server: ServerHandle) -> None:
    with httpx.Client(base_url=fleet_server.url) as http:
        index = http.get("/")
        assert index.status_code == 200 and "text/html" in index.headers["content-type"]
        assert "default-src 'self'" in index.headers["content-security-policy"]
        module = http.get("/ui/js/api.js")
        assert module.status_code == 200 and "javascript" in module.headers["content-type"]
        assert "/v2.34/" in module.text
        assert http.get("/ui/vendor/uplot/LICENSE").status_code == 200
        assert http.get("/ui/%2e%2e/__init__.py").status_code == 404  # no way out of the static folder
        assert http.get("/ui/nope.js").status_code == 404
        # POST / is still the API's: an error envelope, not the page
        reply = http.post("/", json={})
        assert reply.status_code == 400 and reply.json()["meta"]["result_code"] == 400


def test_dashboard_can_be_turned_off() -> None:
    with running_server(dashboard=False) as server, httpx.Client(base_url=server.url) as http:
        assert http.get("/").json()["meta"]["result_code"] == 400
        assert http.get("/ui/js/app.js").json()["meta"]["result_code"] == 400


def _stats(server: ServerHandle, worker: str, key: str = "cpu_usage") -> list[dict[str, Any]]:
    now = int(time.time())
    body = {
        "worker_ids": [worker], "from_date": now - HOUR, "to_date": now, "interval": 600,
        "items": [{"key": key, "aggregation": "avg"}], "split_by_variant": True,
    }  # fmt: skip
    with HttpClient(server.url, version="2.4") as client:  # one metric entry per core / GPU
        return client.call("workers.get_stats", body).unwrap()["workers"][0]["metrics"]


def _natural(text: str) -> list[Any]:
    import re

    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text)]
