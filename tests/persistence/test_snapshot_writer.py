"""The snapshot writers (forked child, thread): a cut is never reached by what happens after it, a failure of
any kind is logged and retried and never stops the server or deletes a journal segment, and a snapshot is
read back and verified before it replaces the old one."""

from __future__ import annotations

import itertools
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trio
import trio.testing

from workerhub.messages import StatsItem, StatsQuery, StatusReport
from workerhub.persistence import snapshot as snapshot_module
from workerhub.persistence import writer as writer_module
from workerhub.persistence.journal import segments
from workerhub.persistence.snapshot import read_snapshot, verify_snapshot
from workerhub.persistence.writer import start_fork
from workerhub.stats.state import FrozenHistory

from ..property.test_snapshot_roundtrip import answers
from .support import T0, session
from .test_disk import crash

WRITERS = ["fork", "thread"]


def report(worker: str, i: int, cores: int = 2) -> StatusReport:
    samples = tuple(("cpu_usage", str(c), float(i + c)) for c in range(cores))
    return StatusReport(worker=worker, timestamp=int(T0 * 1000) + i * 10_000, samples=samples)


async def populate(hub: Any, start: int = 0, n: int = 5, cores: int = 2) -> None:
    for i in range(start, start + n):
        for w in ("w1", "w2"):
            await hub.status_report(report(w, i, cores))


def wide_query() -> StatsQuery:
    items = (StatsItem("cpu_usage", "avg"),)
    return StatsQuery(T0 - 3600, T0 + 3600, 60, items, split_by_variant=True)


async def test_fork_child_sees_the_cut_not_later_writes_or_widening_reads(tmp_path: Path, mock_clock: Any) -> None:
    async with session(tmp_path) as (hub, _store):
        await populate(hub)
        before = await answers(hub)
        async with hub.writes_held():
            child = start_fork(hub.export_state, str(tmp_path), 99)
        # after the cut: a worker gains cores (new series, wider arrays) and a dashboard charts them
        await populate(hub, start=5, n=3, cores=8)
        await hub.get_stats(wide_query())
        info = await child.wait()
        assert info.histories == 2
        _header, state = read_snapshot(info.path)
    async with session(tmp_path / "restored") as (fresh, _store):
        fresh.restore(state)
        assert (await answers(fresh)) == before


def test_frozen_view_is_not_reached_by_a_read_that_widens_the_live_arrays(monkeypatch: pytest.MonkeyPatch) -> None:
    from workerhub.stats import WorkerHistory
    from workerhub.stats import state as state_module
    from workerhub.stats.state import load_state

    h = WorkerHistory()
    for i in range(30):  # half an hour: raw rows and rolled-up 10 min buckets
        h.add(int(T0 * 1000) + i * 60_000, False, [("cpu_usage", "0", float(i))], T0 + i * 60)
    expected = h.freeze().to_state()
    frozen = h.freeze()
    real_select = state_module._select
    calls = [0]

    def select_while_a_read_widens(*args: Any) -> Any:
        calls[0] += 1
        if calls[0] == 2:  # mid-encode, the live chunks and days get wider arrays (issue #9: reads did this)
            for chunk in dict.values(h._chunks):
                rows, width = chunk.vals.shape
                chunk.vals = np.full((rows, width + 5), np.nan, np.float32)
            for day in dict.values(h._days):
                day.mm = [np.full((m.shape[0] + 5, *m.shape[1:]), -np.inf, m.dtype) for m in day.mm]
                day.sc = [np.zeros((c.shape[0] + 5, *c.shape[1:]), c.dtype) for c in day.sc]
        return real_select(*args)

    monkeypatch.setattr(state_module, "_select", select_while_a_read_widens)
    got = frozen.to_state()
    assert calls[0] > 2
    assert _plain(got) == _plain(expected)
    load_state(got)  # decodes: every array has the size its shape says


def _plain(state: dict[str, Any]) -> Any:
    def conv(x: Any) -> Any:
        if isinstance(x, memoryview):
            return bytes(x)
        if isinstance(x, list):
            return [conv(v) for v in x]
        return x

    return {k: conv(v) for k, v in state.items()}


def _child_exits_1(*_args: Any) -> Any:
    os._exit(1)


def _encoder_raises(self: Any) -> Any:
    raise RuntimeError("encoder exploded")


def _flip_a_byte(self: Any, data: bytes) -> None:
    if len(data) > 64:  # a frame's payload: its checksum no longer matches
        mutable = bytearray(data)
        mutable[len(mutable) // 2] ^= 0xFF
        data = bytes(mutable)
    _original_write(self, data)


_original_write = snapshot_module._SyncingWriter.write

FAILURES = {
    "child exits 1": ("fork", lambda mp: mp.setattr(writer_module, "write_snapshot", _child_exits_1), "status 1"),
    "encoder raises (fork)": (
        "fork",
        lambda mp: mp.setattr(FrozenHistory, "to_state", _encoder_raises),
        "encoder exploded",
    ),
    "encoder raises (thread)": (
        "thread",
        lambda mp: mp.setattr(FrozenHistory, "to_state", _encoder_raises),
        "encoder exploded",
    ),
    "corrupt file (fork)": (
        "fork",
        lambda mp: mp.setattr(snapshot_module._SyncingWriter, "write", _flip_a_byte),
        "damaged",
    ),
    "corrupt file (thread)": (
        "thread",
        lambda mp: mp.setattr(snapshot_module._SyncingWriter, "write", _flip_a_byte),
        "damaged",
    ),
}


@pytest.mark.parametrize("case", list(FAILURES))
async def test_a_failed_snapshot_is_logged_keeps_every_segment_and_the_old_snapshot(
    tmp_path: Path, mock_clock: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    writer, inject, reason = FAILURES[case]
    async with session(tmp_path, snapshot_writer=writer) as (hub, store):
        await populate(hub)
        assert await store.snapshot(hub) is not None
        old = (tmp_path / "snapshot.msgpack").read_bytes()
        await populate(hub, start=5)
        expected = await answers(hub)
        kept = segments(str(tmp_path))
        with monkeypatch.context() as mp:
            inject(mp)
            with caplog.at_level(logging.ERROR, logger="workerhub.persistence.disk"):
                assert await store.snapshot(hub) is None
        assert store.failures == 1
        assert "snapshot failed" in caplog.text and reason in caplog.text, caplog.text
        assert (tmp_path / "snapshot.msgpack").read_bytes() == old
        assert not (tmp_path / "snapshot.msgpack.tmp").exists()
        assert set(kept) <= set(segments(str(tmp_path)))  # nothing deleted, one more segment from the cut
        # the server goes on: mutations are accepted, and the next snapshot succeeds and compacts
        await populate(hub, start=10, n=1)
        expected = await answers(hub)
        info = await store.snapshot(hub)
        assert info is not None and store.failures == 0
        verify_snapshot(info.path)
        assert len(segments(str(tmp_path))) == 1
    async with session(tmp_path) as (hub, _store):
        assert (await answers(hub)) == expected


async def test_after_failures_a_crash_restores_everything_from_the_old_snapshot_and_the_journal(
    tmp_path: Path, mock_clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected: dict[str, Any] = {}

    async def body(hub: Any, store: Any) -> None:
        await populate(hub)
        await store.snapshot(hub)
        await populate(hub, start=5)
        expected.update(await answers(hub))
        monkeypatch.setattr(writer_module, "write_snapshot", _child_exits_1)
        assert await store.snapshot(hub) is None
        assert await store.snapshot(hub) is None
        monkeypatch.undo()

    await crash(tmp_path, body)
    async with session(tmp_path) as (hub, _store):
        assert (await answers(hub)) == expected


async def test_segments_are_deleted_only_after_the_new_snapshot_verified(
    tmp_path: Path, mock_clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real_verify = snapshot_module.verify_snapshot

    def spy(path: str, **kw: Any) -> Any:
        calls.append(os.path.basename(path))
        assert len(segments(os.path.dirname(path))) >= 2, "a segment was deleted before verification"
        return real_verify(path, **kw)

    monkeypatch.setattr(snapshot_module, "verify_snapshot", spy)
    async with session(tmp_path, snapshot_writer="thread") as (hub, store):
        await populate(hub)
        assert await store.snapshot(hub) is not None
    assert calls and calls[0] == "snapshot.msgpack.tmp"  # the temp file, before the rename


async def test_the_periodic_task_survives_any_exception_and_backs_off(
    tmp_path: Path, mock_clock: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    mock_clock.autojump_threshold = 0
    attempts: list[float] = []

    async def broken(self: Any, target: Any, *, force: bool = False) -> Any:
        attempts.append(trio.current_time())
        raise RuntimeError("bug in the snapshot path")

    async with session(tmp_path, snapshot_interval=10.0) as (_hub, store):
        monkeypatch.setattr(type(store), "snapshot", broken)
        await trio.sleep(10 + 20 + 40 + 80 + 1)
        gaps = [round(b - a) for a, b in itertools.pairwise(attempts)]
        assert gaps[:3] == [20, 40, 80], gaps  # 2x, 4x, 8x the interval
        assert store.failures >= 4
        monkeypatch.undo()
    assert "bug in the snapshot path" in caplog.text


def _child_hangs(*_args: Any) -> Any:
    import time

    time.sleep(120)


async def test_a_stop_during_a_forked_write_kills_the_child_and_keeps_the_changes_unsaved(
    tmp_path: Path, mock_clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workerhub.persistence import disk as disk_module

    children: list[Any] = []

    def recording_fork(*args: Any) -> Any:
        child = start_fork(*args)
        children.append(child)
        return child

    async with session(tmp_path) as (hub, store):
        await populate(hub)
        expected = await answers(hub)
        with monkeypatch.context() as mp:
            mp.setattr(writer_module, "write_snapshot", _child_hangs)
            mp.setattr(disk_module, "start_fork", recording_fork)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(store.snapshot, hub)
                while not children:
                    await trio.testing.wait_all_tasks_blocked()
                    await trio.lowlevel.checkpoint()
                nursery.cancel_scope.cancel()
        with pytest.raises(ChildProcessError):
            os.waitpid(children[0].pid, os.WNOHANG)  # noqa: ASYNC222 - reaped already: no orphan writes on
        assert store._changes > 0 and not (tmp_path / "snapshot.msgpack").exists()
    # the final snapshot (at the session's clean exit) saved everything
    async with session(tmp_path) as (hub, _store):
        assert (await answers(hub)) == expected
