"""workerhub.testing: running_server, its handle and client, the debug endpoints, the pytest plugin.

The plugin is also exercised the way an outside project uses it: a separate ``python -m pytest`` run of
``docs/examples/test_fake_agent.py`` in a temporary directory, away from this project's conftest.
"""

from __future__ import annotations

import gc
import os
import random
import shutil
import socket
import subprocess
import sys
import unittest
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from workerhub import Hub, RegisterRequest, Settings, StatusReport, serve
from workerhub.config import SettingsError
from workerhub.stats.flatten import flatten_machine_stats
from workerhub.testing import (
    ApiError,
    Client,
    RemoteServer,
    ServerHandle,
    ServerStartError,
    ServerStoppedError,
    WorkerhubServer,
    running_server,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "docs" / "examples" / "test_fake_agent.py"
T0 = 1_700_000_400  # seconds, on a 10-minute boundary


def ids(client: Client) -> list[str]:
    return [w["id"] for w in client.call("workers.get_all", last_seen=0)["workers"]]


def report(client: Client, worker: str, at: float, **machine_stats: Any) -> None:
    client.call("workers.status_report", worker=worker, timestamp=int(at * 1000), machine_stats=machine_stats)


def test_public_surface() -> None:
    import workerhub.testing as kit
    from workerhub.testing import plugin

    assert sorted(kit.__all__) == [
        "ApiError", "Client", "RemoteServer", "ServerHandle", "ServerStartError", "ServerStoppedError",
        "WorkerhubServer", "running_demo", "running_server",
    ]  # fmt: skip
    assert set(plugin.__all__) == {
        "workerhub", "workerhub_client", "workerhub_hub", "workerhub_server", "workerhub_settings", "workerhub_url",
    }  # fmt: skip


# --- the handle and its client -------------------------------------------------------------------------


def test_fixtures_are_the_same_reset_server(
    workerhub: WorkerhubServer, workerhub_url: str, workerhub_client: Client, workerhub_server: WorkerhubServer
) -> None:
    assert workerhub is workerhub_server
    assert workerhub_url == workerhub.url and workerhub_client is workerhub.client
    assert workerhub_url.startswith("http://127.0.0.1:")
    assert isinstance(workerhub, WorkerhubServer)
    assert ids(workerhub_client) == []


def test_client_returns_data_and_raises_typed_errors(workerhub_client: Client) -> None:
    assert workerhub_client.call("workers.register", worker="w1", timeout=30) == {}
    assert ids(workerhub_client) == ["w1"]
    with pytest.raises(ApiError) as err:
        workerhub_client.call("workers.unregister", worker="nope")
    assert err.value.codes == (400, 1004)
    assert err.value.endpoint == "workers.unregister"
    assert "worker=nope" in err.value.message and "400/1004" in str(err.value)
    with pytest.raises(ApiError) as err:
        workerhub_client.call_body("workers.register", [1, 2])
    assert err.value.codes == (400, 12)
    with pytest.raises(ApiError) as err:
        workerhub_client.call("workers.no_such_call")
    assert err.value.code == 404


def test_client_rejects_a_bad_url_and_use_after_close(workerhub_url: str) -> None:
    with pytest.raises(ValueError, match="http://host:port"):
        Client("ftp://example")
    client = Client(workerhub_url)
    assert client.call("debug.ping") == {"msg": "workerhub"}
    client.close()
    with pytest.raises(RuntimeError, match="closed"):
        client.call("debug.ping")


def test_parallel_servers_do_not_share_state(workerhub: WorkerhubServer) -> None:
    with running_server() as a, running_server() as b:
        assert len({a.url, b.url, workerhub.url}) == 3
        a.client.call("workers.register", worker="only-a", timeout=100)
        b.client.call("workers.register", worker="only-b", timeout=100)
        report(b.client, "only-b", T0, cpu_usage=[50])
        assert ids(a.client) == ["only-a"] and ids(b.client) == ["only-b"] and ids(workerhub.client) == []
        a.advance_clock(101)  # each server has its own clock
        assert ids(a.client) == [] and ids(b.client) == ["only-b"]
        with pytest.raises(ApiError):
            a.client.call("workers.get_metric_keys")
        assert b.client.call("workers.get_metric_keys")["categories"] == [
            {"name": "cpu", "metric_keys": ["cpu_usage"]}
        ]
        a.reset()
        assert ids(b.client) == ["only-b"]


def test_reset_clears_everything(workerhub: ServerHandle) -> None:
    client = workerhub.client
    for i in range(20):
        client.call("workers.register", worker=f"w{i}", timeout=600, queues=["q"])
        report(client, f"w{i}", T0 + i, cpu_usage=[i + 1.0], memory_used=100 + i)
    real_start = client.call("workers.get_all", last_seen=0)["workers"][0]["register_time"]
    workerhub.advance_clock(3600 * 5)  # all expired, histories stay
    report(client, "late", T0 + 30, gpu_usage=[1.0])
    assert workerhub.statistics()["histories"] == 21
    wall_before = client.call("workers.get_all")["workers"][0]["register_time"]

    workerhub.reset()

    assert workerhub.statistics() == {"companies": 0, "workers": 0, "histories": 0, "reports": 0}
    assert ids(client) == []
    with pytest.raises(ApiError) as err:
        client.call("workers.get_metric_keys")
    assert err.value.codes == (400, 1005)
    query = {"from_date": T0 - 600, "to_date": T0 + 600, "interval": 60}
    assert client.call("workers.get_stats", **query, items=[{"key": "cpu_usage"}]) == {"workers": []}
    activity = client.call("workers.get_activity_report", **query)
    assert activity == {"total": {"dates": [], "counts": []}, "active": {"dates": [], "counts": []}}
    # wall time is real again: a new registration is stamped "now", not 5 h ahead
    client.call("workers.register", worker="fresh", timeout=60)
    (fresh,) = client.call("workers.get_all")["workers"]
    # (ordered against the server's own stamps: after the first registration, well before the 5 h jump)
    assert _iso_to_epoch(real_start) <= _iso_to_epoch(fresh["register_time"])
    assert _iso_to_epoch(fresh["register_time"]) < _iso_to_epoch(wall_before) - 3600 * 4


def _iso_to_epoch(iso: str) -> float:
    from datetime import UTC, datetime

    return datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp()


def test_advancing_the_clock_expires_exactly_the_workers_past_their_deadline(workerhub: ServerHandle) -> None:
    rng = random.Random(6)
    client = workerhub.client
    # timeouts are multiples of 10 s and the checks fall 5 s between them: the real time that flows while
    # the test runs (the clock runs at real speed on top of the jumps) has 5 s of slack before it matters
    deadline: dict[str, float] = {f"w{i:03}": 10 * rng.randint(1, 30) for i in range(150)}
    for worker, timeout in deadline.items():
        client.call("workers.register", worker=worker, timeout=int(timeout))
    elapsed = 0.0
    renewed = False
    for step in (5, 10, 10, 30, 50, 100, 100):
        workerhub.advance_clock(step)
        elapsed += step
        alive = sorted(w for w, d in deadline.items() if d > elapsed)
        assert ids(client) == alive, f"after {elapsed} s"
        gone = [w for w, d in deadline.items() if d <= elapsed]
        for worker in rng.sample(gone, min(3, len(gone))):
            with pytest.raises(ApiError) as err:
                client.call("workers.unregister", worker=worker)
            assert err.value.codes == (400, 1004)
        if not renewed and elapsed > 100:
            # a report renews the worker's own timeout from now: its deadline moves, nobody else's
            lucky = next(w for w in alive if deadline[w] % 100)
            report(client, lucky, T0, cpu_usage=[1])
            deadline[lucky] = elapsed + deadline[lucky]
            renewed = True
    assert ids(client) == [w for w, d in sorted(deadline.items()) if d > elapsed] != []


def test_misuse_gives_clear_errors(workerhub: ServerHandle) -> None:
    with pytest.raises(ValueError, match="forward"):
        workerhub.advance_clock(-1)
    with pytest.raises(ValueError, match="finite"):
        workerhub.advance_clock(float("inf"))
    with pytest.raises(ValueError):
        workerhub.advance_clock(float("nan"))
    with pytest.raises(TypeError, match="number of seconds"):
        workerhub.advance_clock("10")  # type: ignore[arg-type]
    with pytest.raises(SettingsError, match="no_such_setting"), running_server(no_such_setting=1):
        pass
    with pytest.raises(ValueError, match="testing mode"), running_server(testing=False):
        pass


def test_handle_used_after_the_block_raises() -> None:
    with running_server() as server:
        server.client.call("workers.register", worker="w", timeout=10)
    for use in (server.reset, lambda: server.advance_clock(1), server.statistics):
        with pytest.raises(ServerStoppedError, match="inside the `with running_server\\(\\)` block"):
            use()
    with pytest.raises(RuntimeError, match="closed"):
        server.client.call("debug.ping")
    with pytest.raises(OSError):
        Client(server.url, timeout=2).call("debug.ping")  # nothing listens there any more


def test_starting_on_a_port_in_use_raises_server_start_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        in_use = f"127.0.0.1:{port}: the address is already in use"
        with pytest.raises(ServerStartError, match=in_use), running_server(port=port):
            pass
    # hypercorn does not close the socket whose bind failed (hypercorn.config.Config._create_sockets):
    # collect it here, where that is expected, not in whichever later test the collector happens to run
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def test_works_from_plain_unittest() -> None:
    class AgentTest(unittest.TestCase):
        server: ServerHandle

        @classmethod
        def setUpClass(cls) -> None:
            cls.server = cls.enterClassContext(running_server(default_timeout=60))

        def setUp(self) -> None:
            self.server.reset()

        def test_auto_registered_worker_expires(self) -> None:
            report(self.server.client, "agent", T0, cpu_usage=[5])
            self.server.advance_clock(61)
            self.assertEqual(ids(self.server.client), [])

        def test_starts_empty(self) -> None:
            self.assertEqual(ids(self.server.client), [])

    with open(os.devnull, "w") as quiet:
        result = unittest.TextTestRunner(stream=quiet, verbosity=0).run(
            unittest.defaultTestLoader.loadTestsFromTestCase(AgentTest)
        )
    assert result.wasSuccessful() and result.testsRun == 2, result.failures + result.errors


def test_keep_alive_connection_survives_big_clock_jumps(workerhub: ServerHandle) -> None:
    # each jump passes hypercorn's keep-alive and quart's 60 s response timeouts
    for _ in range(20):
        assert workerhub.client.call("debug.ping") == {"msg": "workerhub"}
        workerhub.advance_clock(120)


async def test_the_sync_handle_works_inside_async_tests(workerhub: ServerHandle) -> None:
    # trio refuses blocking cross-thread calls from inside a run: the handle routes them through a thread
    workerhub.client.call("workers.register", worker="w", timeout=10)
    workerhub.advance_clock(11)
    assert ids(workerhub.client) == []
    workerhub.reset()
    assert workerhub.statistics()["companies"] == 0


def test_the_handle_refuses_its_own_server_thread(workerhub: ServerHandle) -> None:
    with pytest.raises(RuntimeError, match="own trio thread"):
        workerhub.run_sync(workerhub.reset)


# --- the debug endpoints over HTTP -----------------------------------------------------------------------


def test_remote_server_resets_and_moves_time_over_http(workerhub: ServerHandle) -> None:
    remote = RemoteServer(workerhub.url)
    try:
        remote.check()
        remote.client.call("workers.register", worker="w", timeout=30)
        report(remote.client, "w", T0, cpu_usage=[1])
        remote.advance_clock(25)
        assert ids(remote.client) == ["w"]
        remote.advance_clock(6)
        assert ids(remote.client) == []
        remote.reset()
        assert workerhub.statistics()["histories"] == 0
        with pytest.raises(ValueError):
            remote.advance_clock(-5)  # checked before sending
        with pytest.raises(ApiError) as err:
            remote.client.call("debug.advance_clock", seconds=-5)
        assert err.value.codes == (400, 12) and "seconds" in err.value.message
        with pytest.raises(ApiError) as err:
            remote.client.call("debug.advance_clock", seconds="5")
        assert err.value.codes == (400, 12)
    finally:
        remote.close()


async def test_debug_endpoints_are_refused_outside_testing_mode() -> None:
    settings = Settings(port=0, testing=False, persist=False)  # never the user's data directory
    async with trio.open_nursery() as nursery:
        _hub, urls = await nursery.start(serve, settings)
        async with httpx.AsyncClient(base_url=urls[0]) as http:
            for name, body in (("debug.reset", {}), ("debug.advance_clock", {"seconds": 10})):
                r = await http.post(f"/{name}", json=body)
                meta = r.json()["meta"]
                assert r.status_code == 403 and (meta["result_code"], meta["result_subcode"]) == (403, 0)
                assert "testing mode" in meta["result_msg"] and name in meta["result_msg"]
            assert (await http.post("/debug.ping", json={})).status_code == 200
        remote = RemoteServer(urls[0])
        with pytest.raises(ApiError, match="start the server at .* with `workerhub serve --testing`"):
            await trio.to_thread.run_sync(remote.check)  # what --workerhub-url reports at session start
        remote.close()
        nursery.cancel_scope.cancel()


# --- the in-process hub fixture ------------------------------------------------------------------------


async def test_in_process_hub_fixture(workerhub_hub: Hub, mock_clock: trio.testing.MockClock) -> None:
    hub = workerhub_hub
    await hub.register(RegisterRequest(worker="a", timeout=30))
    await hub.register(RegisterRequest(worker="b", timeout=90))
    samples = flatten_machine_stats({"cpu_usage": [10, 30], "memory_used": 512})
    await hub.status_report(StatusReport(worker="b", timestamp=T0 * 1000, samples=samples))
    assert [w["id"] for w in hub.get_all(0)] == ["a", "b"]
    start = hub.clock.wall()
    hub.advance_clock(31)
    assert hub.clock.wall() - start == pytest.approx(31)  # frozen clock: time moves only when told
    assert [w["id"] for w in hub.get_all(0)] == ["b"]
    hub.advance_clock(60)
    assert hub.get_all(0) == []
    assert hub.get_metric_keys() == [
        {"name": "cpu", "metric_keys": ["cpu_usage"]},
        {"name": "memory", "metric_keys": ["memory_used"]},
    ]


# --- the plugin as an outside project uses it -----------------------------------------------------------


def _pytest(
    cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    # a clean slate: none of this run's PYTEST_* variables (PYTEST_CURRENT_TEST, PYTEST_ADDOPTS, ...)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")} | (env or {})
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(cwd), *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture
def outside_project(tmp_path: Path) -> Path:
    """A directory outside this project holding only the docs' example test."""
    shutil.copy(EXAMPLE, tmp_path / EXAMPLE.name)
    return tmp_path


def test_docs_example_passes_in_a_separate_pytest_run(outside_project: Path) -> None:
    # plus a trio test that forgot the MockClock the in-process hub needs: it must fail saying what to do
    (outside_project / "test_forgot_clock.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.trio\n"
        "async def test_forgot_the_clock(workerhub_hub):\n"
        "    pass\n"
    )
    # no sleeping: its 600 s timeouts pass in milliseconds, else _pytest's timeout fails this test
    run = _pytest(outside_project, "-rf")  # the plugin comes from the installed pytest11 entry point
    output = run.stdout + run.stderr
    assert "1 failed, 4 passed" in run.stdout, output
    assert "FAILED test_forgot_clock.py::test_forgot_the_clock" in run.stdout, output
    assert "request pytest-trio's `mock_clock` fixture" in run.stdout, output


def test_docs_example_with_explicit_plugin_and_no_autoload(outside_project: Path) -> None:
    run = _pytest(outside_project, "-p", "workerhub.testing.plugin", env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert run.returncode == 0, run.stdout + run.stderr
    assert "4 passed" in run.stdout


@pytest.fixture
def external_server() -> Iterator[str]:
    """``workerhub serve --testing`` in a subprocess; yields its URL."""
    cmd = [sys.executable, "-m", "workerhub", "serve", "--testing", "--no-persist"]  # never the user's data dir
    cmd += ["--port", "0", "--log-level", "warning"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("workerhub listening on "), line + (proc.stderr.read() if proc.stderr else "")
        yield line.split()[-1]
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def test_docs_example_against_an_external_server(outside_project: Path, external_server: str) -> None:
    run = _pytest(outside_project, "--workerhub-url", external_server)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "4 passed" in run.stdout


def test_docs_show_the_example_files_verbatim() -> None:
    doc = (ROOT / "docs" / "testing.md").read_text()
    for example in (EXAMPLE, EXAMPLE.with_name("test_clearml_sdk.py")):
        assert example.read_text() in doc, f"docs/testing.md must show {example.name} as it is"


def test_docs_clearml_sdk_example(tmp_path: Path) -> None:
    pytest.importorskip("clearml", reason="the SDK example needs clearml")
    sdk_example = EXAMPLE.with_name("test_clearml_sdk.py")
    shutil.copy(sdk_example, tmp_path / sdk_example.name)
    run = _pytest(tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout
