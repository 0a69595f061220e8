"""The actor's count of queued mutations: it decides when a mutation may be applied at once, so it must
come back to zero whatever happens to the calls that queued (answered, refused, cancelled)."""

from __future__ import annotations

import trio
import trio.testing

from workerhub.actors import open_hub
from workerhub.actors.worker import MAILBOX_SIZE, WorkerActor, WorkerState
from workerhub.clock import Clock
from workerhub.messages import DEFAULT_IDENTITY, RegisterRequest, StatusReport
from workerhub.stats import WorkerHistory


def _report(ts: int) -> StatusReport:
    return StatusReport(worker="w1", timestamp=ts, samples=(("cpu_usage", "0", float(ts)),))


async def test_a_sender_cancelled_while_the_mailbox_is_full_leaves_no_count_behind() -> None:
    clock = Clock()
    clock.start()
    state = WorkerState(id="w1", identity=DEFAULT_IDENTITY, ip="x", register_timeout=600, register_time=0.0,
                        last_activity_time=0.0)
    actor = WorkerActor(state, WorkerHistory(), clock, lambda a: None)
    applied: list[int] = []
    async with trio.open_nursery() as outer:
        async with trio.open_nursery() as nursery:
            # its task has not started: every call queues, three more than the mailbox holds wait for room
            for i in range(MAILBOX_SIZE + 3):
                nursery.start_soon(actor.call, lambda i=i: applied.append(i))
            await trio.testing.wait_all_tasks_blocked()
            assert actor._queued == MAILBOX_SIZE + 3
            nursery.cancel_scope.cancel()  # every sender gives up; the three waiting were never delivered
        assert actor._queued == MAILBOX_SIZE
        outer.start_soon(actor.run)
        await trio.testing.wait_all_tasks_blocked()  # the actor applies what was delivered
        assert len(applied) == MAILBOX_SIZE  # (in the order they were queued: trio starts tasks in any order)
        assert actor._queued == 0
        # nothing is ahead any more: the next mutation is applied at once, not queued
        assert actor.apply_now(lambda: applied.append(-1))
        assert applied[-1] == -1
        actor.retire()


async def test_calls_refused_after_retirement_leave_no_count_behind() -> None:
    async with open_hub() as hub:
        await hub.register(RegisterRequest("w1", timeout=600))
        actor = hub._live(DEFAULT_IDENTITY, "w1")
        assert actor is not None
        errors: list[BaseException] = []

        async def one() -> None:
            try:
                await actor.call(lambda: None)
            except Exception as exc:  # noqa: BLE001 -- the refusal is what the test looks at
                errors.append(exc)

        async with trio.open_nursery() as nursery:
            for _ in range(4):
                nursery.start_soon(one)
            await trio.testing.wait_all_tasks_blocked()
            actor.retire()
        assert actor._queued == 0
        assert len(errors) <= 4


async def test_the_timeout_is_renewed_without_moving_the_scope(autojump_clock: trio.testing.MockClock) -> None:
    async with open_hub() as hub:
        await hub.register(RegisterRequest("w1", timeout=10))
        await trio.testing.wait_all_tasks_blocked()
        actor = hub._live(DEFAULT_IDENTITY, "w1")
        assert actor is not None and actor._scope is not None
        first = actor._scope
        for i in range(3):  # past the first deadline twice over: the task re-arms, the worker lives on
            await trio.sleep(8)
            await hub.status_report(_report(1000 * (i + 1)))
        await trio.testing.wait_all_tasks_blocked()
        assert [w["id"] for w in hub.get_all(0)] == ["w1"]
        assert actor._scope is not first, "the task armed a new scope once the first deadline passed"
        await trio.sleep(11)
        assert hub.get_all(0) == []
        assert actor.retired
