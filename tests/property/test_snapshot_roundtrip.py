"""Property: for random histories of mutations and time jumps, a hub restored from a snapshot file, and a
hub rebuilt by replaying the journal records, answer every query exactly as the original does, now and
after time moves on (expiries included)."""

from __future__ import annotations

import tempfile
from typing import Any

import hypothesis.strategies as st
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings

from workerhub import Clock, Settings
from workerhub.actors import Hub, open_hub
from workerhub.errors import WorkerhubError
from workerhub.messages import Identity, RegisterRequest, StatusReport
from workerhub.persistence.format import decode_record, encode_record
from workerhub.persistence.snapshot import read_snapshot, write_snapshot

from ..support import HUB_T0 as T0
from ..support import IDENTITIES, METRICS, answers

WORKERS = ["a", "b", "c"]


class RecordingStore:
    """Keeps every appended record, encoded and decoded as the journal does."""

    def __init__(self) -> None:
        self.records: list[Any] = []

    async def append(self, op: str, identity: Identity, payload: Any, ip: str, at: float) -> None:
        self.records.append(decode_record(encode_record(op, identity, payload, ip, at)))

    def serving(self, hub: Hub) -> Any:
        raise AssertionError("the recording store is never served: the test restores by hand")

    async def aclose(self) -> None:
        return None


samples = st.lists(
    st.tuples(
        st.sampled_from(METRICS),
        st.sampled_from(["0", "1", "total"]),
        st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    ),
    max_size=5,
)
names = st.lists(st.sampled_from(["q1", "q2", "q3"]), max_size=3).map(tuple)
ops = st.one_of(
    st.tuples(
        st.just("register"),
        st.sampled_from(IDENTITIES),
        st.builds(
            RegisterRequest,
            worker=st.sampled_from(WORKERS),
            timeout=st.integers(1, 300),
            queues=names,
            tags=st.none() | names,
        ),
    ),
    st.tuples(
        st.just("status_report"),
        st.sampled_from(IDENTITIES),
        st.builds(
            StatusReport,
            worker=st.sampled_from(WORKERS),
            timestamp=st.integers(int(T0 * 1000) - 7_200_000, int(T0 * 1000) + 7_200_000),
            task=st.none() | st.sampled_from(["t1", "t2"]),
            queue=st.none() | st.sampled_from(["q1", "q2"]),
            queues=st.none() | names,
            samples=samples.map(tuple),
            tags=st.none() | names,
        ),
    ),
    st.tuples(st.just("unregister"), st.sampled_from(IDENTITIES), st.sampled_from(WORKERS)),
    st.tuples(st.just("advance"), st.just(None), st.floats(0, 400)),
)


async def run(history: list[tuple[str, Any, Any]], later: float) -> None:
    cfg = Settings()
    recorder = RecordingStore()
    async with open_hub(cfg, clock=Clock(T0), store=recorder) as hub:
        for op, ident, arg in history:
            try:
                if op == "register":
                    await hub.register(arg, identity=ident, ip="10.0.0.1")
                elif op == "status_report":
                    await hub.status_report(arg, identity=ident, ip="10.0.0.2")
                elif op == "unregister":
                    await hub.unregister(arg, identity=ident)
                else:
                    hub.advance_clock(arg)
                    await trio.testing.wait_all_tasks_blocked()
            except WorkerhubError:
                pass
        await trio.testing.wait_all_tasks_blocked()
        with tempfile.TemporaryDirectory() as tmp:
            state = hub.export_state()
            write_snapshot(tmp, state, 7)
            header, loaded = read_snapshot(f"{tmp}/snapshot.msgpack")
        assert header["journal"] == 7
        expected = await answers(hub)
        async with open_hub(cfg, clock=Clock(hub.clock.wall()), store=recorder) as restored:
            restored.restore(loaded)
            async with open_hub(cfg, clock=Clock(hub.clock.wall()), store=recorder) as replayed:
                for r in recorder.records:
                    replayed.replay(r.op, r.identity, r.payload, r.ip, r.at)
                await trio.testing.wait_all_tasks_blocked()
                assert replayed.clock.wall() == restored.clock.wall() == hub.clock.wall()
                assert (await answers(restored)) == expected
                assert (await answers(replayed)) == expected
                for h in (hub, restored, replayed):
                    h.advance_clock(later)
                await trio.testing.wait_all_tasks_blocked()
                after = await answers(hub)
                assert (await answers(restored)) == after
                assert (await answers(replayed)) == after


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=st.lists(ops, max_size=30), later=st.floats(0, 400))
def test_snapshot_and_journal_replay_restore_an_equal_hub(history: list[Any], later: float) -> None:
    trio.run(run, history, later, clock=trio.testing.MockClock())
