"""The worker actor applies mutations in order, through its mailbox or inline when it is idle."""

from __future__ import annotations

import trio

from workerhub.actors import open_hub
from workerhub.messages import RegisterRequest, StatusReport


def _report(ts: int, task: str | None = None) -> StatusReport:
    return StatusReport(worker="w1", timestamp=ts, task=task, samples=(("cpu_usage", "0", float(ts)),))


class _RecordingStore:
    """Remembers the order in which mutations were accepted (journaled)."""

    def __init__(self) -> None:
        self.accepted: list[StatusReport] = []

    async def append(self, op: str, identity: object, payload: StatusReport, ip: str, at: float) -> None:
        self.accepted.append(payload)

    async def aclose(self) -> None:
        return None


async def test_concurrent_reports_to_a_new_worker_land_in_acceptance_order() -> None:
    store = _RecordingStore()
    async with open_hub(store=store) as hub:  # type: ignore[arg-type]
        async with trio.open_nursery() as nursery:
            # The actor task has not started yet: the first calls queue in its mailbox, later ones are
            # applied inline once it idles. Either way every report lands, in the order it was accepted.
            for i in range(40):
                nursery.start_soon(hub.status_report, _report(1000 * (i + 1), task=f"t{i}"))
        (worker,) = hub.get_all(0)
        assert worker["task"]["id"] == store.accepted[-1].task
        (history,) = [h for company, worker, h in hub.histories() if (company, worker) == ("workerhub", "w1")]
        ts, _ = history.rows(0, 10**9)
        assert ts.tolist() == [1000 * (i + 1) for i in range(40)]


async def test_inline_apply_renews_the_deadline(autojump_clock: trio.testing.MockClock) -> None:
    async with open_hub() as hub:
        await hub.register(RegisterRequest("w1", timeout=10))
        await trio.testing.wait_all_tasks_blocked()  # the actor now idles on its empty mailbox
        for _ in range(5):
            await trio.sleep(8)
            await hub.status_report(_report(1000))  # applied inline: must move the timeout forward
            assert [w["id"] for w in hub.get_all(0)] == ["w1"]
        await trio.sleep(11)
        assert hub.get_all(0) == []
