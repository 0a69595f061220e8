"""DiskStore end to end in process: restart, crash (journal only), compaction, expiry while down,
bad files refused, torn journal tails dropped, one server per directory."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest
import trio

from workerhub.errors import find_error
from workerhub.messages import RegisterRequest, StatusReport
from workerhub.persistence import PersistenceError
from workerhub.persistence.format import SNAPSHOT_MAGIC, frame, pack, unpack
from workerhub.persistence.journal import segments

from ..support import answers
from .support import T0, Crash, session


def report(worker: str, i: int, **kw: Any) -> StatusReport:
    return StatusReport(
        worker=worker,
        timestamp=int(T0 * 1000) + i * 10_000,
        samples=(("cpu_usage", "0", float(i)), ("memory_used", "total", 100.0 + i)),
        **kw,
    )


async def populate(hub: Any, n: int = 5) -> None:
    await hub.register(RegisterRequest("w1", timeout=600, queues=("q1",), tags=("gpu",)), ip="10.1.1.1")
    for i in range(n):
        await hub.status_report(report("w1", i, task="t1", queue="q1"), ip="10.1.1.1")
        await hub.status_report(report("w2", i), ip="10.1.1.2")


async def crash(directory: Path, body: Any, wall: float = T0, **settings: Any) -> None:
    """Run ``body(hub, store)`` in a session that then dies without its final snapshot."""
    try:
        async with session(directory, wall, **settings) as (hub, store):
            await body(hub, store)
            raise Crash
    except BaseException as exc:
        if find_error(exc, Crash) is None:
            raise


async def start_fails(directory: Path) -> str:
    with pytest.raises(BaseException) as info:
        async with session(directory):
            pass
    found = find_error(info.value, PersistenceError)
    assert found is not None, info.value
    return str(found)


async def test_clean_stop_writes_a_snapshot_and_restart_answers_the_same(tmp_path: Path, mock_clock: Any) -> None:
    async with session(tmp_path) as (hub, _store):
        await populate(hub)
        before = await answers(hub)
    names = sorted(os.listdir(tmp_path))
    assert "snapshot.msgpack" in names and len(segments(str(tmp_path))) == 1, names
    async with session(tmp_path) as (hub, _store):
        assert (await answers(hub)) == before


@pytest.mark.parametrize("fsync", ["always", "interval", "never"])
async def test_after_a_crash_the_journal_alone_restores_everything(
    tmp_path: Path, mock_clock: Any, fsync: str
) -> None:
    box: dict[str, Any] = {}

    async def body(hub: Any, store: Any) -> None:
        await populate(hub)
        box["before"] = await answers(hub)

    await crash(tmp_path, body, journal_fsync=fsync)
    assert not (tmp_path / "snapshot.msgpack").exists()
    async with session(tmp_path) as (hub, _store):
        assert (await answers(hub)) == box["before"]


async def test_snapshot_compacts_the_journal_and_later_records_replay_on_top(
    tmp_path: Path, mock_clock: Any
) -> None:
    box: dict[str, Any] = {}

    async def body(hub: Any, store: Any) -> None:
        await populate(hub, 3)
        first = segments(str(tmp_path))
        info = await store.snapshot(hub)
        assert info is not None and info.workers == 2
        assert segments(str(tmp_path)) == [first[-1] + 1], "segments before the cut are deleted"
        await hub.status_report(report("w1", 50), ip="10.9.9.9")
        await hub.unregister("w2")
        assert await store.snapshot(hub) is not None
        assert await store.snapshot(hub) is None, "nothing changed: no new snapshot"
        await hub.register(RegisterRequest("w3", timeout=30))
        box["before"] = await answers(hub)

    await crash(tmp_path, body)
    async with session(tmp_path) as (hub, _store):
        assert (await answers(hub)) == box["before"]


@pytest.mark.parametrize("how", ["clean", "crash"])
async def test_workers_whose_timeout_passed_while_down_are_expired_on_load(
    tmp_path: Path, mock_clock: Any, how: str
) -> None:
    async def body(hub: Any, store: Any) -> None:
        await hub.register(RegisterRequest("short", timeout=60))
        await hub.register(RegisterRequest("long", timeout=3600))
        await hub.status_report(report("short", 1))  # renews short: expires at T0 + 60
        hub.advance_clock(30)
        await hub.status_report(report("long", 2))  # long now expires at T0 + 30 + 3600

    if how == "clean":
        async with session(tmp_path) as (hub, store):
            await body(hub, store)
    else:
        await crash(tmp_path, body)
    async with session(tmp_path, wall=T0 + 600) as (hub, _store):
        assert [w["id"] for w in hub.get_all(0)] == ["long"]
        assert [w["worker"] for w in (await hub.get_stats(_all_stats()))] == ["long", "short"], "stats outlive expiry"
        hub.advance_clock(3600 + 30 - 600 - 1)
        assert [w["id"] for w in hub.get_all(0)] == ["long"], "the remaining timeout is kept"
        hub.advance_clock(2)
        await trio.testing.wait_all_tasks_blocked()
        assert hub.get_all(0) == []


def _all_stats() -> Any:
    from workerhub.messages import StatsItem, StatsQuery

    return StatsQuery(T0 - 3600, T0 + 3600, 10, (StatsItem("cpu_usage"),))


# --- bad files -----------------------------------------------------------------------------------------


async def _snapshot_file(tmp_path: Path) -> Path:
    async with session(tmp_path) as (hub, _store):
        await populate(hub, 20)
    return tmp_path / "snapshot.msgpack"


def _rewrite_header(path: Path, **changes: Any) -> None:
    raw = path.read_bytes()
    at = len(SNAPSHOT_MAGIC)
    length = int.from_bytes(raw[at : at + 4], "little")
    header = unpack(raw[at + 8 : at + 8 + length])
    header.update(changes)
    path.write_bytes(raw[:at] + frame(pack(header)) + raw[at + 8 + length :])


@pytest.mark.parametrize(
    "damage", ["flipped byte", "truncated", "newer format", "older format", "not a snapshot", "empty"]
)
async def test_a_bad_snapshot_stops_the_start_and_is_left_untouched(
    tmp_path: Path, mock_clock: Any, damage: str
) -> None:
    path = await _snapshot_file(tmp_path)
    raw = path.read_bytes()
    if damage == "flipped byte":
        mid = len(raw) // 2
        path.write_bytes(raw[:mid] + bytes([raw[mid] ^ 0xFF]) + raw[mid + 1 :])
    elif damage == "truncated":
        path.write_bytes(raw[: len(raw) - 7])
    elif damage == "newer format":
        _rewrite_header(path, format=99, workerhub="9.0.0")
    elif damage == "older format":  # format 1: float64 columns per series, no tiers (before the tiers layout)
        _rewrite_header(path, format=1, workerhub="0.1.0")
    elif damage == "not a snapshot":
        path.write_bytes(b'{"workers": []}')
    else:
        path.write_bytes(b"")
    bad = path.read_bytes()
    message = await start_fails(tmp_path)
    assert str(path) in message and "\n" not in message
    expected = {
        "flipped byte": "damaged",
        "truncated": "truncated",
        "newer format": "newer workerhub",
        "older format": "older workerhub",
        "not a snapshot": "not a workerhub snapshot",
        "empty": "not a workerhub snapshot",
    }[damage]
    assert expected in message
    assert ("upgrade workerhub" if damage == "newer format" else "move it out") in message
    assert path.read_bytes() == bad, "a bad snapshot is never overwritten"
    assert await start_fails(tmp_path) == message, "and it keeps refusing"


async def _journal_only(tmp_path: Path, n: int) -> Path:
    async def body(hub: Any, store: Any) -> None:
        for i in range(n):
            await hub.status_report(report("w1", i))

    await crash(tmp_path, body)
    return tmp_path / f"journal-{segments(str(tmp_path))[-1]:08d}.wal"


async def test_a_torn_last_journal_record_is_dropped_with_a_warning(
    tmp_path: Path, mock_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    path = await _journal_only(tmp_path, 4)
    whole = path.read_bytes()
    record = frame(b"\x93" + b"x" * 40)
    path.write_bytes(whole + record[:-10])  # a write cut short
    with caplog.at_level(logging.WARNING):
        async with session(tmp_path) as (hub, _store):
            assert len((await hub.get_stats(_all_stats()))[0]["metrics"][0]["dates"]) == 4
            await hub.status_report(report("w1", 10))
    assert "torn last record" in caplog.text and str(path) in caplog.text
    async with session(tmp_path) as (hub, _store):
        assert len((await hub.get_stats(_all_stats()))[0]["metrics"][0]["dates"]) == 5


async def test_zeros_after_the_last_record_count_as_a_torn_tail(tmp_path: Path, mock_clock: Any) -> None:
    path = await _journal_only(tmp_path, 3)
    with open(path, "ab") as f:
        f.write(bytes(4096))
    async with session(tmp_path) as (hub, _store):
        assert len((await hub.get_stats(_all_stats()))[0]["metrics"][0]["dates"]) == 3


async def test_a_damaged_record_in_the_middle_of_the_journal_stops_the_start(
    tmp_path: Path, mock_clock: Any
) -> None:
    path = await _journal_only(tmp_path, 6)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    message = await start_fails(tmp_path)
    assert str(path) in message and "damaged" in message
    assert path.read_bytes() == bytes(raw)


async def test_a_second_server_on_the_same_directory_is_refused(tmp_path: Path, mock_clock: Any) -> None:
    async with session(tmp_path):
        message = await start_fails(tmp_path)
        assert "another workerhub" in message


@pytest.mark.parametrize("fsync", ["always", "never"])
async def test_snapshots_cut_between_concurrent_mutations_lose_and_repeat_nothing(
    tmp_path: Path, mock_clock: Any, fsync: str
) -> None:
    """Snapshots (and journal compaction) while reports are in flight: after a crash every report is
    there exactly once, whether it landed in a snapshot or in the journal after its cut."""
    workers, per_worker = 8, 40

    async def body(hub: Any, store: Any) -> None:
        async def send(w: int) -> None:
            for i in range(per_worker):
                await hub.status_report(report(f"w{w}", i))

        async def snapshots() -> None:
            for _ in range(6):
                await store.snapshot(hub)
                await trio.sleep(0)

        async with trio.open_nursery() as nursery:
            for w in range(workers):
                nursery.start_soon(send, w)
            nursery.start_soon(snapshots)
        assert (tmp_path / "snapshot.msgpack").exists()

    await crash(tmp_path, body, journal_fsync=fsync)
    async with session(tmp_path) as (hub, _store):
        stats = {w["worker"]: w["metrics"][0] for w in (await hub.get_stats(_all_stats()))}
        assert sorted(stats) == sorted(f"w{w}" for w in range(workers))
        for metric in stats.values():
            assert len(metric["dates"]) == per_worker
            assert metric["stats"][0]["values"] == [float(i) for i in range(per_worker)], "each report once"
