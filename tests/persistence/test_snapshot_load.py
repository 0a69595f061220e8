"""Loading a snapshot: arrays are read-only views of the decoded bytes (no copy, nothing pins the file), a
write after the load copies first and never reaches the file, and a damaged file is refused as before."""

from __future__ import annotations

import gc
import hashlib
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from workerhub.hubstate import HubState
from workerhub.messages import StatsItem, StatsQuery, StatusReport
from workerhub.persistence.format import PersistenceError, frame, pack, unpack
from workerhub.persistence.snapshot import SNAPSHOT_MAGIC, read_snapshot, verify_snapshot, write_snapshot
from workerhub.stats import WorkerHistory
from workerhub.stats.columns import RawChunk, TierDay

from .support import T0, session

MS = int(T0 * 1000)


def _history(hours: int = 3, cores: int = 2) -> WorkerHistory:
    h = WorkerHistory()
    for i in range(hours * 60):  # a report a minute: raw rows, closed 10 min buckets and a pending one
        samples = [("cpu_usage", str(c), float(i + c)) for c in range(cores)] + [("memory_used", "total", 5.0)]
        h.add(MS - hours * 3_600_000 + i * 60_000, i % 2 == 0, samples, written_at=T0 - 3600 + i)
    return h


def _write(directory: Path, *histories: WorkerHistory) -> Path:
    state = HubState(T0, [], [("c", f"w{i}", h.freeze()) for i, h in enumerate(histories)])
    return Path(write_snapshot(str(directory), state, 0).path)


def _arrays(h: WorkerHistory) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    for chunk in dict.values(h._chunks):
        out += [chunk.ts, chunk.task, chunk.vals]
    for day in dict.values(h._days):
        out += [*day.mm, *day.sc, *day.rc]
    return out


def _root(a: Any) -> Any:
    while isinstance(a, np.ndarray) and a.base is not None:
        a = a.base
    return a


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_loaded_arrays_are_read_only_views_of_their_own_bytes(tmp_path: Path) -> None:
    path = _write(tmp_path, _history(), _history(cores=4))
    _header, state = read_snapshot(str(path))
    for _company, _worker, h in state.histories:
        h._check()  # loaded objects are shared-generation (sealed), none is "fresh"
        arrays = _arrays(h)
        assert arrays
        for a in arrays:
            assert not a.flags.writeable
            with pytest.raises(ValueError, match="read-only"):
                a.flat[0] = 0
            # a view of one bytes object decoded for this array alone: no copy, and nothing refers to the
            # file's mapping (it is closed; the next snapshot may replace the file at once)
            assert type(_root(a)) is bytes
            assert len(_root(a)) == a.nbytes


def test_a_write_after_the_load_copies_and_leaves_the_file_and_the_loaded_arrays_unchanged(tmp_path: Path) -> None:
    original = _history()
    path = _write(tmp_path, original)
    digest = _digest(path)
    _header, state = read_snapshot(str(path))
    h = state.histories[0][2]
    loaded = {id(a): (a, a.copy()) for a in _arrays(h)}
    newest = max(dict.keys(h._chunks))
    # into the newest (loaded, sealed) hour; a late one into an old hour and closed bucket; a new series
    h.add(newest + 3_599_000, True, [("cpu_usage", "0", 1.0)], written_at=T0 + 1)
    h.add(MS - 3 * 3_600_000 + 1_000, False, [("cpu_usage", "1", 2.0)], written_at=T0 + 2)
    h.add(newest + 3_600_000, False, [("gpu_usage", "0", 3.0)], written_at=T0 + 3)
    h._check()
    assert len(h) == len(original) + 3
    for a, before in loaded.values():
        assert np.array_equal(a, before, equal_nan=True), "a loaded array changed"
        assert not a.flags.writeable
    assert _digest(path) == digest
    ts, _vals = h.series(newest, newest + 3_600_000, {"cpu_usage"})[("cpu_usage", "0")]
    assert ts[-1] == newest + 3_599_000


async def test_a_server_writing_after_its_load_leaves_the_old_file_intact(tmp_path: Path, mock_clock: Any) -> None:
    query = StatsQuery(T0 - 60, T0 + 3600, 60, (StatsItem("cpu_usage", "max"),), split_by_variant=False)
    async with session(tmp_path) as (hub, _store):
        for i in range(30):
            await hub.status_report(StatusReport("w1", MS + i * 60_000, samples=(("cpu_usage", "0", float(i)),)))
    path = tmp_path / "snapshot.msgpack"
    kept = tmp_path / "kept.msgpack"
    os.link(path, kept)  # the loaded file's inode, whatever the next snapshot renames over it
    digest = _digest(kept)
    async with session(tmp_path) as (hub, store):
        # into the newest loaded hour and its pending bucket (sealed: copied first), then a cut
        await hub.status_report(StatusReport("w1", MS + 30 * 60_000, samples=(("cpu_usage", "0", 99.0),)))
        assert await store.snapshot(hub, force=True) is not None
        after = await hub.get_stats(query)
    assert _digest(kept) == digest, "the loaded snapshot was written to"
    assert "99.0" in repr(after)
    async with session(tmp_path) as (hub, _store):
        assert await hub.get_stats(query) == after


def _damaged(path: Path, how: str) -> None:
    raw = path.read_bytes()
    first = len(SNAPSHOT_MAGIC) + 8 + int.from_bytes(raw[len(SNAPSHOT_MAGIC) : len(SNAPSHOT_MAGIC) + 4], "little")
    if how == "flipped byte":
        mid = len(raw) // 2
        path.write_bytes(raw[:mid] + bytes([raw[mid] ^ 0xFF]) + raw[mid + 1 :])
    elif how == "cut mid-frame":
        path.write_bytes(raw[: len(raw) - 7])
    elif how == "cut after a frame":  # whole frames, but no end frame
        path.write_bytes(raw[:first])
    elif how == "zeroed tail":  # what a file system may leave after a crash: whole frames, then zeros
        path.write_bytes(raw[:first] + bytes(len(raw) - first))
    elif how == "magic only":
        path.write_bytes(SNAPSHOT_MAGIC)
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "short array":  # checksums fine, an array one byte short of its shape
        head = raw[:first]
        frames = []
        at = first
        while at < len(raw):
            n = int.from_bytes(raw[at : at + 4], "little")
            frames.append(unpack(raw[at + 8 : at + 8 + n]))
            at += 8 + n
        frames[0][3]["chunks"][0][5] = frames[0][3]["chunks"][0][5][:-1]
        path.write_bytes(head + b"".join(frame(pack(f)) for f in frames))


@pytest.mark.parametrize(
    ("how", "words"),
    [
        ("flipped byte", "snapshot is damaged at byte"),
        ("cut mid-frame", "snapshot is truncated at byte"),
        ("cut after a frame", "snapshot is truncated (no end frame)"),
        ("zeroed tail", "snapshot is truncated at byte"),
        ("magic only", "snapshot is truncated (no end frame)"),
        ("empty", "not a workerhub snapshot"),
        ("short array", "snapshot cannot be decoded (chunk"),
    ],
)
def test_a_damaged_file_gives_the_same_clear_error(
    tmp_path: Path, how: str, words: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="workerhub.persistence.snapshot")
    path = _write(tmp_path, _history(), _history(hours=1))
    _damaged(path, how)
    for read in (read_snapshot, verify_snapshot):
        with pytest.raises(PersistenceError) as err:
            read(str(path))
        message = str(err.value)
        assert message.startswith(f"{path}: ") and words in message and "\n" not in message, message
    assert "still referenced" not in caplog.text, "the mapping outlived the failed load"


@pytest.mark.parametrize("enabled", [True, False])
def test_the_collector_and_the_switch_interval_are_changed_only_while_loading(tmp_path: Path, enabled: bool) -> None:
    path = _write(tmp_path, *[_history(hours=1) for _ in range(5)])
    was, switch = gc.isenabled(), sys.getswitchinterval()
    threads = threading.active_count()
    try:
        (gc.enable if enabled else gc.disable)()
        for how in (None, "short array", "flipped byte"):  # fine; fails in the decoder; fails in the checksums
            if how is None:
                read_snapshot(str(path))
            else:
                _damaged(path, how)
                with pytest.raises(PersistenceError):
                    read_snapshot(str(path))
            assert gc.isenabled() is enabled
            assert sys.getswitchinterval() == switch
            assert threading.active_count() == threads, "the checksum thread outlived the load"
    finally:
        (gc.enable if was else gc.disable)()


def test_task_flags_other_than_0_or_1_still_read_as_a_task() -> None:
    h = _history(hours=1)
    state = unpack(pack(h.to_state()))
    task = bytearray(state["chunks"][0][4])
    task[0] = 7  # never written by workerhub; a copy of the old reading (any non-zero byte is a task)
    state["chunks"][0][4] = bytes(task)
    loaded = WorkerHistory.from_state(state)
    chunk: RawChunk = dict.__getitem__(loaded._chunks, state["chunks"][0][0])
    assert chunk.task.dtype == np.bool_ and bool(chunk.task[0]) and not chunk.task.flags.writeable


def test_a_state_of_memoryviews_is_copied_not_shared() -> None:
    """``to_state`` gives views of live arrays: a history built from it must not change when they do."""
    h = _history(hours=1)
    state = h.to_state()
    loaded = WorkerHistory.from_state(state)
    day: TierDay = dict.values(loaded._days).__iter__().__next__()
    before = day.sc[0].copy()
    h.add(MS - 3_600_000 + 30_000, False, [("cpu_usage", "0", 1e6)], written_at=T0)  # a late report: tiers
    assert np.array_equal(day.sc[0], before)
    assert all(type(_root(a)) is bytes for a in _arrays(loaded))


def test_a_file_system_that_cannot_map_files_still_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from workerhub.persistence import snapshot as snapshot_module

    histories = [_history(hours=1), _history(hours=2, cores=3)]
    path = _write(tmp_path, *histories)
    _header, mapped = read_snapshot(str(path))

    def no_mmap(*_args: Any, **_kwargs: Any) -> Any:
        raise OSError(19, "No such device")

    monkeypatch.setattr(snapshot_module.mmap, "mmap", no_mmap)
    _header, read = read_snapshot(str(path))
    assert [h.to_state() for _c, _w, h in read.histories] == [h.to_state() for _c, _w, h in mapped.histories]
    assert all(not a.flags.writeable for _c, _w, h in read.histories for a in _arrays(h))
    _damaged(path, "cut mid-frame")
    with pytest.raises(PersistenceError, match="snapshot is truncated at byte"):
        read_snapshot(str(path))


def test_loads_at_once_restore_the_switch_interval_when_the_last_one_ends(tmp_path: Path) -> None:
    from workerhub.persistence import snapshot as snapshot_module

    switch = sys.getswitchinterval()
    snapshot_module._short_switch(+1)
    snapshot_module._short_switch(+1)
    assert sys.getswitchinterval() < switch
    snapshot_module._short_switch(-1)
    assert sys.getswitchinterval() < switch, "restored while another load still runs"
    snapshot_module._short_switch(-1)
    assert sys.getswitchinterval() == switch
    path = _write(tmp_path, *[_history(hours=2) for _ in range(8)])
    threads = [threading.Thread(target=read_snapshot, args=(str(path),)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sys.getswitchinterval() == switch
