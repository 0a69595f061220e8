"""A start restores the snapshot's workers, then replays the journal judging liveness at each record's time."""

from __future__ import annotations

from typing import Any

from workerhub import Clock, Settings
from workerhub.actors import open_hub
from workerhub.hubstate import HubState
from workerhub.messages import DEFAULT_IDENTITY, RegisterRequest, StatusReport

T0 = 1_700_000_000.0


async def test_a_report_journaled_while_a_restored_worker_lived_finds_it(mock_clock: Any) -> None:
    """Found by the stateful persistence test: the worker expired before the start, so the load dropped it,
    and the report the journal held from when it was alive registered it anew with the default timeout."""
    async with open_hub(Settings(persist=False), clock=Clock(T0)) as hub:
        await hub.register(RegisterRequest(worker="a", timeout=5))
        state = hub.export_state()
    async with open_hub(Settings(persist=False), clock=Clock(T0 + 10)) as hub:
        assert hub.restore(HubState(state.wall, state.workers, [])) == 1  # expired since
        report = StatusReport(worker="a", timestamp=int(T0 * 1000), samples=(("cpu_usage", "0", 1.0),))
        hub.replay("status_report", DEFAULT_IDENTITY, report, "127.0.0.1", T0 + 1)
        # renewed at T0 + 1 with its own 5 s: expired at T0 + 6, not alive for 600 s
        assert hub.get_all(0) == []
