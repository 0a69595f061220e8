"""Periodic retention runs in slices of histories, other tasks running in between, with the same result
as one synchronous pass; a worker that registers between two slices keeps the history it writes to."""

from __future__ import annotations

from typing import Any

import trio

from workerhub import Clock, Settings
from workerhub.actors import open_hub
from workerhub.actors.maintenance import TRIM_SLICE
from workerhub.messages import DEFAULT_IDENTITY, RegisterRequest, StatusReport

T0 = 1_700_000_000.0
WORKERS = 3 * TRIM_SLICE + 5


def _report(worker: str, ts_s: float) -> StatusReport:
    return StatusReport(worker=worker, timestamp=int(ts_s * 1000), samples=(("cpu_usage", "0", 1.0),))


async def _fleet(hub: Any) -> None:
    for i in range(WORKERS):
        await hub.status_report(_report(f"w{i:03d}", T0))
        await hub.unregister(f"w{i:03d}")


async def test_slices_drop_what_one_pass_drops(mock_clock: Any) -> None:
    settings = Settings(persist=False, raw_retention=60, tier_retention=60)
    kept: list[dict[str, int]] = []
    for sliced in (False, True):
        async with open_hub(settings, clock=Clock(T0)) as hub:
            await _fleet(hub)
            await hub.register(RegisterRequest(worker="stays", timeout=3600))
            await hub.status_report(_report("stays", T0))
            # every row is past retention; "stays" is registered, so its (empty) history stays. No await
            # from here on: the periodic pass must not run first.
            Clock.advance(90)
            if sliced:
                parts = list(hub._trim_slices())
                assert len(parts) > WORKERS // TRIM_SLICE  # it did yield between slices
                dropped = sum(parts)
            else:
                dropped = hub.trim()
            assert dropped == WORKERS + 1
            hub._check()
            kept.append(hub.statistics())
    assert kept[0] == kept[1] and kept[0]["histories"] == 1


async def test_a_worker_registering_between_slices_keeps_its_history(mock_clock: Any) -> None:
    settings = Settings(persist=False, raw_retention=60, tier_retention=60)
    async with open_hub(settings, clock=Clock(T0)) as hub:
        await _fleet(hub)
        Clock.advance(90)
        late = f"w{WORKERS - 1:03d}"  # trimmed in the last slice
        slices = hub._trim_slices()
        next(slices)
        # between two slices (other tasks run there): the worker comes back, with no report yet
        await hub.register(RegisterRequest(worker=late, timeout=600))
        for _ in slices:
            await trio.lowlevel.checkpoint()
        hub._check()  # its actor writes the very history the company keeps
        histories = hub._companies["workerhub"].histories
        assert list(histories) == [late]
        await hub.status_report(_report(late, T0 + 95))
        assert len(histories[late]) == 1


async def test_an_actor_past_its_deadline_does_not_keep_its_history(mock_clock: Any) -> None:
    """A journal register replayed at a start, already expired, before its actor's task has run: retention
    must judge it expired (found by the stateful persistence test, a restart after a crash)."""
    async with open_hub(Settings(persist=False), clock=Clock(T0)) as hub:
        register = RegisterRequest(worker="gone", timeout=5)
        hub.replay("register", DEFAULT_IDENTITY, register, "127.0.0.1", T0 - 6)  # no await after this
        assert hub.statistics()["histories"] == 1
        hub.trim()
        assert hub.statistics()["histories"] == 0
