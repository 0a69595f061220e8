"""Stateful property (issue #9): a durable hub (DiskStore on a real directory) under interleaved reports
(workers gaining cores and GPUs: new series, wider arrays), queries of those new series (the reads that once
widened frozen arrays), snapshot cuts with reports and queries racing the writer, clean restarts and
crashes. After every restart the hub equals the one that was snapshotted and journaled, to the bit: the
canonical export (registrations, every history's persisted state, byte for byte) and every query's answer.

The hub runs on trio in a background thread with a MockClock; a restart ends that thread (with or without
the final snapshot) and starts a new one on the same directory at the same wall time.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable
from typing import Any

import hypothesis.strategies as st
import trio
import trio.testing
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from workerhub.errors import WorkerhubError, find_error
from workerhub.messages import RegisterRequest, StatsItem, StatsQuery, StatusReport

from ..persistence.support import Crash, session
from ..support import answers

T0 = 1_700_000_000.0
WORKERS = ["a", "b", "c"]


class SessionThread:
    """A DiskStore session (what ``serve()`` runs minus HTTP) in a trio thread on a MockClock."""

    def __init__(self, directory: str, wall: float, writer: str) -> None:
        self._box: dict[str, Any] = {}
        ready = threading.Event()

        async def main() -> None:
            stop = trio.Event()
            try:
                async with session(directory, wall, snapshot_writer=writer, snapshot_interval=1e9) as (hub, store):
                    self._box.update(hub=hub, store=store, stop=stop, token=trio.lowlevel.current_trio_token())
                    ready.set()
                    await stop.wait()
                    if self._box.get("crash"):
                        raise Crash
            except BaseException as exc:
                if find_error(exc, Crash) is None:
                    self._box["error"] = exc
                    raise
            finally:
                ready.set()

        def thread_main() -> None:
            try:
                trio.run(main, clock=trio.testing.MockClock())
            except BaseException:  # noqa: BLE001, S110 - kept in the box and raised by close()
                pass

        self._thread = threading.Thread(target=thread_main, daemon=True)
        self._thread.start()
        ready.wait()
        if "error" in self._box:
            self._thread.join()
            raise self._box["error"]
        self.hub = self._box["hub"]
        self.store = self._box["store"]

    def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return trio.from_thread.run(lambda: fn(*args), trio_token=self._box["token"])

    def run_sync(self, fn: Callable[..., Any], *args: Any) -> Any:
        return trio.from_thread.run_sync(lambda: fn(*args), trio_token=self._box["token"])

    def close(self, crash: bool) -> None:
        self._box["crash"] = crash
        trio.from_thread.run_sync(self._box["stop"].set, trio_token=self._box["token"])
        self._thread.join()
        if "error" in self._box:
            raise self._box["error"]


def _plain(x: Any) -> Any:
    if isinstance(x, memoryview):
        return bytes(x)
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    return x


def canonical(hub: Any) -> Any:
    """Everything a snapshot persists, as plain comparable data (expiry rounded: it crosses clock bases)."""
    state = hub.export_state()
    workers = sorted(
        (w.identity, w.id, w.ip, w.register_timeout, w.register_time, w.last_activity_time, w.last_report_time,
         w.queues, w.queue, w.task, w.task_since, w.tags, round(w.expires_at, 6))
        for w in state.workers
    )
    histories = {(c, w): _plain(h.to_state()) for c, w, h in state.histories}
    return round(state.wall, 6), workers, histories


def series_queries() -> list[StatsQuery]:
    items = tuple(StatsItem(m, a) for m in ("cpu_usage", "gpu_usage", "gpu_temperature") for a in ("avg", "max"))
    return [
        StatsQuery(T0 - 7200, T0 + 7200, interval, items, split_by_variant=split)
        for interval in (60, 3600)
        for split in (False, True)
    ]


async def ask(hub: Any) -> list[Any]:
    out = []
    for q in series_queries():
        try:
            out.append(await hub.get_stats(q))
        except WorkerhubError as exc:
            out.append(type(exc).__name__)
    return out


async def _observe(hub: Any) -> tuple[Any, list[Any], dict[str, Any], float]:
    """Everything a restart must reproduce: the state, queries of the new series, every answer, the time.

    Retention is applied first, as a start applies it right after the load: otherwise an expired worker's
    empty history, which the next periodic trim would drop anyway, differs only by when that trim ran."""
    hub.trim()
    return canonical(hub), await ask(hub), await answers(hub), hub.clock.wall()


class DurableHub(RuleBasedStateMachine):
    writer = "fork"

    def __init__(self) -> None:
        super().__init__()
        self.directory = tempfile.mkdtemp(prefix="workerhub-stateful-")
        self.server: SessionThread | None = None
        self.cores: dict[str, int] = dict.fromkeys(WORKERS, 1)
        self.gpus: dict[str, int] = dict.fromkeys(WORKERS, 0)
        self.tick = 0

    @initialize()
    def start(self) -> None:
        self.server = SessionThread(self.directory, T0, self.writer)

    def teardown(self) -> None:
        if self.server is not None:
            self.server.close(crash=True)
        shutil.rmtree(self.directory, ignore_errors=True)

    @property
    def s(self) -> SessionThread:
        assert self.server is not None
        return self.server

    def _report(self, worker: str) -> StatusReport:
        self.tick += 1
        samples = tuple(("cpu_usage", str(c), float((self.tick + c) % 97)) for c in range(self.cores[worker]))
        for g in range(self.gpus[worker]):
            samples += (("gpu_usage", str(g), float(self.tick % 50)), ("gpu_temperature", str(g), 40.0 + g))
        samples += (("memory_used", "total", float(self.tick)),)
        ts = int(T0 * 1000) + (self.tick * 7_919) % 7_200_000 - 3_600_000
        return StatusReport(worker=worker, timestamp=ts, samples=samples, task="t1" if self.tick % 3 else None)

    @rule(worker=st.sampled_from(WORKERS), n=st.integers(1, 4))
    def report(self, worker: str, n: int) -> None:
        for _ in range(n):
            self.s.run(self.s.hub.status_report, self._report(worker))

    @rule(worker=st.sampled_from(WORKERS), gpu=st.booleans())
    def gain_a_core_or_a_gpu(self, worker: str, gpu: bool) -> None:
        if gpu:
            self.gpus[worker] += 1
        else:
            self.cores[worker] += 1
        self.s.run(self.s.hub.status_report, self._report(worker))

    @rule(worker=st.sampled_from(WORKERS), timeout=st.integers(5, 600))
    def register(self, worker: str, timeout: int) -> None:
        self.s.run(self.s.hub.register, RegisterRequest(worker, timeout=timeout, queues=("q1",)))

    @rule(seconds=st.floats(0, 300))
    def advance(self, seconds: float) -> None:
        self.s.run_sync(self.s.hub.advance_clock, seconds)

    @rule()
    def query_new_series(self) -> None:
        self.s.run(ask, self.s.hub)

    @rule()
    def snapshot(self) -> None:
        assert self.s.run(lambda: self.s.store.snapshot(self.s.hub, force=True)) is not None

    @rule(worker=st.sampled_from(WORKERS))
    def snapshot_racing_writes_and_reads(self, worker: str) -> None:
        """A cut while reports (one more core) and queries of the new series run beside the writer."""
        hub, store = self.s.hub, self.s.store
        self.cores[worker] += 1
        reports = [self._report(worker) for _ in range(3)]

        async def race() -> None:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(lambda: store.snapshot(hub, force=True))
                for r in reports:
                    await hub.status_report(r)
                    await ask(hub)
                    await trio.lowlevel.checkpoint()

        self.s.run(race)

    @rule(crash=st.booleans())
    def restart(self, crash: bool) -> None:
        hub = self.s.hub
        expected = self.s.run(_observe, hub)
        self.s.close(crash=crash)
        self.server = SessionThread(self.directory, expected[3], self.writer)
        hub = self.s.hub
        got = self.s.run(_observe, hub)
        assert got[0] == expected[0], "the restarted hub's state differs"
        assert got[1] == expected[1], "get_stats of the new series differs after the restart"
        assert got[2] == expected[2]

    @invariant()
    def bookkeeping_holds(self) -> None:
        if self.server is not None:
            hub, store = self.s.hub, self.s.store
            self.s.run_sync(lambda: (store._journal._check(), hub.writes._check()))


class ThreadWriterDurableHub(DurableHub):
    writer = "thread"


TestDurableHub = DurableHub.TestCase
TestDurableHub.settings = settings(
    max_examples=12, stateful_step_count=15, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestThreadWriterDurableHub = ThreadWriterDurableHub.TestCase
TestThreadWriterDurableHub.settings = settings(
    max_examples=6, stateful_step_count=15, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

