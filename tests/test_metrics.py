"""GET /metrics: Prometheus text that parses, counters that move with real requests on every transport,
per-company gauges that keep companies apart, persistence figures, the fleet gauges and the metrics port."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from workerhub import Settings
from workerhub.server import serve
from workerhub.testing import ServerHandle, running_server

from .support import JsonApi, StreamApi

T0 = 1_700_000_000


Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]


def scrape(base_url: str, path: str = "/metrics", **headers: str) -> Samples:
    """``{sample name: {sorted labels: value}}`` of a scrape, parsed by prometheus_client's own parser."""
    r = httpx.get(base_url + path, headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    out: Samples = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get(name, {}).get(tuple(sorted(labels.items())), 0.0)


def report(worker: str, i: int = 0, **stats: Any) -> dict[str, Any]:
    return {"worker": worker, "timestamp": (T0 + i) * 1000, "machine_stats": stats or {"cpu_usage": [10.0, 30.0]}}


def test_metrics_parse_and_count_requests_by_call_and_code(api: JsonApi | StreamApi, hub_server: ServerHandle) -> None:
    before = scrape(hub_server.url)
    api.ok("workers.register", {"worker": "w1"})
    for i in range(3):
        api.ok("workers.status_report", report("w1", i))
    assert api.call("workers.unregister", {"worker": "nobody"}).code == (400, 1004)
    after = scrape(hub_server.url)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("workerhub_requests_total", call="workers.status_report", code="200") == 3
    assert delta("workerhub_requests_total", call="workers.register", code="200") == 1
    assert delta("workerhub_requests_total", call="workers.unregister", code="400") == 1
    assert delta("workerhub_request_duration_seconds_count", call="workers.status_report") == 3
    assert delta("workerhub_request_duration_seconds_bucket", call="workers.status_report", le="+Inf") == 3
    assert value(after, "workerhub_workers", company="workerhub") == 1
    assert value(after, "workerhub_stats_reports", company="workerhub") == 3
    assert value(after, "workerhub_stats_values", company="workerhub") == 6  # two cores x three reports
    assert value(after, "workerhub_stats_memory_bytes") > 0
    assert value(after, "workerhub_ready") == 1
    assert "workerhub_worker_stat" not in after, "fleet gauges are off by default"


def test_stream_connections_are_counted(hub_server: ServerHandle) -> None:
    from workerhub.client import StreamClient

    assert hub_server.stream_url is not None
    before = scrape(hub_server.url)
    with StreamClient(hub_server.stream_url, timeout=10) as client:
        client.call("debug.ping", {})
        during = scrape(hub_server.url)
    for name in ("workerhub_stream_connections_total", "workerhub_stream_connections_open"):
        assert value(during, name) == value(before, name) + 1, name


CREDENTIALS = ("alice:a-secret-key:acme:alice", "eve:e-secret-key:globex:eve")


def basic(entry: str) -> dict[str, str]:
    key, secret = entry.split(":")[:2]
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()}


@pytest.fixture(scope="module")
def tenant_server() -> Iterator[ServerHandle]:
    with running_server(auth=CREDENTIALS) as handle:
        yield handle


def test_per_company_gauges_keep_companies_apart_and_need_no_credentials(tenant_server: ServerHandle) -> None:
    tenant_server.reset()
    with httpx.Client(base_url=tenant_server.url, timeout=10) as c:
        alice, eve = JsonApi(c), JsonApi(c)
        for w in ("a1", "a2"):
            assert alice.call("workers.status_report", report(w), headers=basic(CREDENTIALS[0])).ok
        assert eve.call("workers.register", {"worker": "e1"}, headers=basic(CREDENTIALS[1])).ok
        assert alice.call("workers.get_all", {}).code == (401, 20), "the API itself still needs credentials"
    samples = scrape(tenant_server.url)  # no Authorization header
    assert value(samples, "workerhub_workers", company="acme") == 2
    assert value(samples, "workerhub_workers", company="globex") == 1
    assert value(samples, "workerhub_stats_reports", company="acme") == 2
    assert value(samples, "workerhub_stats_reports", company="globex") == 0
    assert value(samples, "workerhub_histories", company="acme") == 2


def test_fleet_gauges_only_behind_the_setting() -> None:
    with running_server(metrics_fleet=True) as server:
        server.client.call("workers.status_report", **report("w1", 0, cpu_usage=[5.0, 7.0], memory_used=1024))
        server.client.call("workers.status_report", **report("w1", 1, cpu_usage=[50.0, 70.0], memory_used=2048))
        server.client.call("workers.status_report", **report("w2", 0, gpu_usage=[99.0]))
        server.client.call("workers.status_report", **report('odd "id"\\\n', 0, memory_used=1.5))
        samples = scrape(server.url)
    fleet = samples["workerhub_worker_stat"]
    assert fleet[(("company", "workerhub"), ("metric", "cpu_usage"), ("variant", "0"), ("worker", "w1"))] == 50.0
    assert fleet[(("company", "workerhub"), ("metric", "cpu_usage"), ("variant", "1"), ("worker", "w1"))] == 70.0
    assert fleet[(("company", "workerhub"), ("metric", "gpu_usage"), ("variant", "0"), ("worker", "w2"))] == 99.0
    assert (("company", "workerhub"), ("metric", "gpu_usage"), ("variant", "0"), ("worker", "w1")) not in fleet
    odd = (("company", "workerhub"), ("metric", "memory_used"), ("variant", "total"), ("worker", 'odd "id"\\\n'))
    assert fleet[odd] == 1.5, "label values are escaped"


def test_persistence_figures(tmp_path: Path) -> None:
    with running_server(data_dir=str(tmp_path), journal_fsync="always") as server:
        for i in range(4):
            server.client.call("workers.status_report", **report("w1", i))
        samples = scrape(server.url)
        assert value(samples, "workerhub_journal_appends_total") == 4
        assert value(samples, "workerhub_journal_fsync_duration_seconds_count") >= 1
        assert value(samples, "workerhub_persistence_writable") == 1
        assert value(samples, "workerhub_snapshots_total") == 0
        assert "workerhub_snapshot_age_seconds" not in samples, "no snapshot on disk yet"
        server.run(lambda: server.hub.store.snapshot(server.hub, force=True))
        samples = scrape(server.url)
    assert value(samples, "workerhub_snapshots_total") == 1
    assert value(samples, "workerhub_snapshot_failures_total") == 0
    assert value(samples, "workerhub_snapshot_size_bytes") == (tmp_path / "snapshot.msgpack").stat().st_size
    assert value(samples, "workerhub_snapshot_duration_seconds") > 0
    assert value(samples, "workerhub_snapshot_age_seconds") >= 0


def test_no_metrics_turns_the_endpoint_off() -> None:
    with running_server(metrics=False) as server:
        r = httpx.get(server.url + "/metrics", timeout=10)
        assert r.status_code == 400 and r.json()["meta"]["result_code"] == 400
        assert httpx.get(server.url + "/livez", timeout=10).status_code == 200


async def test_metrics_port_serves_the_ops_paths_and_takes_metrics_off_the_api_port() -> None:
    settings = Settings(port=0, metrics_port=0, persist=False, auth=CREDENTIALS)
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        _hub, urls = await nursery.start(lambda task_status: serve(settings, shutdown_trigger=stop.wait,
                                                                   task_status=task_status))
        api_url, metrics_url = urls[0], urls[1]
        assert metrics_url.endswith("/metrics") and metrics_url != api_url + "/metrics"
        ops_url = metrics_url.removesuffix("/metrics")

        def check() -> None:
            assert value(scrape(ops_url), "workerhub_ready") == 1
            assert httpx.get(ops_url + "/readyz", timeout=10).status_code == 200
            assert httpx.get(ops_url + "/workers.get_all", timeout=10).status_code == 404
            assert httpx.post(ops_url + "/metrics", timeout=10).status_code == 404
            off = httpx.get(api_url + "/metrics", timeout=10)
            assert off.status_code == 400, "not on the API port when it has its own"

        await trio.to_thread.run_sync(check)
        stop.set()
