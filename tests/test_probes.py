"""GET /livez and /readyz: live as soon as HTTP listens; ready once the saved state is loaded and the
journal can be written; 503 with the reason otherwise. workers.* calls answer 503 while the state loads."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from workerhub import Settings
from workerhub.server import serve
from workerhub.testing import ServerHandle, running_server


def test_livez_and_readyz_answer_200_without_credentials() -> None:
    with running_server(auth=("alice:a-secret-key",)) as server:
        for path in ("/livez", "/readyz"):
            r = httpx.get(server.url + path, timeout=10)
            assert (r.status_code, r.text) == (200, "ok\n")
            assert r.headers["cache-control"] == "no-store"


def test_probes_take_get_only(hub_server: ServerHandle) -> None:
    r = httpx.post(hub_server.url + "/readyz", timeout=10)
    assert r.status_code == 400 and r.json()["meta"]["result_code"] == 400  # the API's answer to a bad path


def _seed(directory: Path) -> None:
    with running_server(data_dir=str(directory)) as server:
        server.client.call("workers.register", worker="w1", timeout=3600)
        server.client.call("workers.status_report", worker="w1", timestamp=1_700_000_000_000,
                           machine_stats={"cpu_usage": [10.0]})


async def test_readyz_is_503_while_the_saved_state_loads_then_200(tmp_path: Path) -> None:
    await trio.to_thread.run_sync(_seed, tmp_path)  # running_server blocks: not on this trio thread
    settings = Settings(port=0, data_dir=str(tmp_path), msgpack_port=0)
    listening, release, stop, started = trio.Event(), trio.Event(), trio.Event(), trio.Event()
    box: dict[str, Any] = {}

    async def hold_the_load(urls: list[str]) -> None:
        # Deterministically "slow": the load waits until the test has looked at the loading server.
        box["url"] = urls[0]
        listening.set()
        await release.wait()

    async def run(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        await serve(settings, shutdown_trigger=stop.wait, on_listening=hold_the_load, task_status=task_status)

    def while_loading(url: str) -> None:
        with httpx.Client(base_url=url, timeout=10) as c:
            assert c.get("/livez").status_code == 200
            r = c.get("/readyz")
            assert r.status_code == 503 and "loading the saved state" in r.text, r.text
            reply = c.post("/workers.get_all", json={})
            assert reply.status_code == 503, reply.text
            meta = reply.json()["meta"]
            assert (meta["result_code"], meta["result_subcode"]) == (503, 0)
            assert "starting" in meta["result_msg"]
            assert c.post("/workers.status_report", json={"worker": "w2", "timestamp": 1}).status_code == 503
            assert c.post("/debug.ping", json={}).status_code == 200
            metrics = c.get("/metrics").text
            assert "workerhub_ready 0.0" in metrics

    def once_loaded(url: str) -> None:
        with httpx.Client(base_url=url, timeout=10) as c:
            assert (c.get("/readyz").status_code, c.get("/readyz").text) == (200, "ok\n")
            workers = c.post("/workers.get_all", json={"last_seen": 0}).json()["data"]["workers"]
            assert [w["id"] for w in workers] == ["w1"], "the state loaded, and nothing was applied before"

    async with trio.open_nursery() as nursery:

        async def start() -> None:
            box["urls"] = (await nursery.start(run))[1]
            started.set()

        nursery.start_soon(start)
        await listening.wait()
        await trio.to_thread.run_sync(while_loading, box["url"])
        assert not started.is_set(), "serve() reports started only once the state is loaded"
        release.set()
        await started.wait()
        assert any(u.startswith("msgpack://") for u in box["urls"])
        await trio.to_thread.run_sync(once_loaded, box["url"])
        stop.set()


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=128k", "tmpfs", str(mnt)]
    done = subprocess.run(mount, check=False, capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False, capture_output=True)


def test_readyz_is_503_with_the_reason_when_persistence_is_not_writable(tmpfs: Path) -> None:
    data = tmpfs / "data"
    _seed(data)
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True, capture_output=True)
    try:
        with running_server(data_dir=str(data)) as server:
            r = httpx.get(server.url + "/readyz", timeout=10)
            assert r.status_code == 503
            assert r.text.startswith("not ready: persistence is not writable:") and "Read-only" in r.text, r.text
            assert httpx.get(server.url + "/livez", timeout=10).status_code == 200
            assert "workerhub_persistence_writable 0.0" in httpx.get(server.url + "/metrics", timeout=10).text
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(tmpfs)], check=True, capture_output=True)
    with running_server(data_dir=str(data)) as server:
        assert httpx.get(server.url + "/readyz", timeout=10).status_code == 200
