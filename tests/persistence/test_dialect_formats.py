"""Tags and system_tags survive restarts (snapshot format 3, journal format 2), and the files the previous
release wrote (snapshot format 2, journal format 1: no system_tags) still load.

``data/journal-format2/`` is a journal segment of format 2 (before the columnar status_report record of
format 3), written by the workerhub of 2026-12-01 in a session that crashed (no snapshot): w1 registered
and sent three reports, w2 sent one and was unregistered. :func:`_format2_calls` makes the same calls.

``data/release-format2/`` was written by workerhub before issue 10 (w1 registered with tags and reporting,
a clean stop; then w2 registered with tags in a session that crashed, so it is only in the journal).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from workerhub.api.parse import parse_status_report
from workerhub.messages import Identity, RegisterRequest, StatsItem, StatsQuery, StatusReport
from workerhub.persistence.format import (
    JOURNAL_FORMAT,
    SNAPSHOT_FORMAT,
    SNAPSHOT_MAGIC,
    decode_record,
    encode_record,
    pack,
    read_frames,
    unpack,
)

from .support import T0, Crash, session

RELEASE = Path(__file__).parent / "data" / "release-format2"


def tags_of(hub: Any) -> dict[str, tuple[Any, Any]]:
    return {w["id"]: (w.get("tags"), w.get("system_tags")) for w in hub.get_all(0, head=True)}


async def test_the_previous_release_files_still_load(tmp_path: Path, mock_clock: Any) -> None:
    for f in RELEASE.iterdir():
        shutil.copy(f, tmp_path / f.name)
    async with session(tmp_path, T0 + 60) as (hub, _store):
        assert tags_of(hub) == {"w1": (["gpu", "a"], []), "w2": (["b"], [])}
        assert hub.get_metric_keys() == [
            {"name": "cpu", "metric_keys": ["cpu_usage"]},
            {"name": "memory", "metric_keys": ["memory_used"]},
        ]
    # the clean stop rewrote the snapshot in this build's format; it loads again
    header = unpack_header(tmp_path / "snapshot.msgpack")
    assert header["format"] == SNAPSHOT_FORMAT == 3
    async with session(tmp_path, T0 + 60) as (hub, _store):
        assert tags_of(hub) == {"w1": (["gpu", "a"], []), "w2": (["b"], [])}


def unpack_header(path: Path) -> dict[str, Any]:
    with open(path, "rb") as f:
        assert f.read(len(SNAPSHOT_MAGIC)) == SNAPSHOT_MAGIC
        size = path.stat().st_size
        _offset, raw = next(read_frames(f, size))
    header: dict[str, Any] = unpack(raw)
    return header


async def test_system_tags_survive_a_restart_and_a_crash(tmp_path: Path, mock_clock: Any) -> None:
    async with session(tmp_path) as (hub, _store):
        await hub.register(RegisterRequest("w1", tags=("a",), system_tags=("s",)))
    async with session(tmp_path) as (hub, _store):  # from the snapshot
        assert tags_of(hub) == {"w1": (["a"], ["s"])}
        await hub.status_report(StatusReport("w1", int(T0 * 1000), tags=("x",), system_tags=("y", "z")))
    async with session(tmp_path) as (hub, _store):
        assert tags_of(hub) == {"w1": (["x"], ["y", "z"])}


def test_journal_records_of_format_1_decode_without_system_tags() -> None:
    ident = Identity("c", "u")
    report = StatusReport("w1", 5, tags=("a",), system_tags=("s",))
    register = RegisterRequest("w1", timeout=60, tags=("a",), system_tags=("s",))
    for op, payload in (("status_report", report), ("register", register)):
        record = decode_record(encode_record(op, ident, payload, "ip", 1.0))
        assert record.payload == payload
    # the format 1 records: format 2's without the trailing system_tags
    body = ("w1", 5, None, None, None, (), ("a",))
    old = decode_record(pack(("status_report", ["c", "u", "", ""], body, "ip", 1.0)))
    assert old.payload == StatusReport("w1", 5, tags=("a",)) and old.payload.system_tags is None
    old = decode_record(pack(("register", ["c", "u", "", ""], ("w1", 60, ("q",), ("a",)), "ip", 1.0)))
    assert old.payload == RegisterRequest("w1", timeout=60, queues=("q",), tags=("a",))


def test_status_report_records_of_format_2_and_3_decode_alike() -> None:
    ident = Identity("c", "u", "cn", "un")
    body = {"worker": "w1", "timestamp": 5, "queues": ["q"], "system_tags": ["s"],
            "machine_stats": {"cpu_usage": [1.5, 2], "memory_used": 3.25, "gpu_temperature": [1e30]}}
    parsed = parse_status_report(body)  # with the parser's shape: the cached keys
    plain = StatusReport("w1", 5, queues=("q",), samples=parsed.samples, system_tags=("s",))  # without
    r = parsed
    format2 = pack(("status_report", ["c", "u", "cn", "un"],
                    (r.worker, r.timestamp, r.task, r.queue, r.queues, r.samples, r.tags, r.system_tags), "ip", 1.0))
    for report in (parsed, plain, parsed):
        record = decode_record(encode_record("status_report", ident, report, "ip", 1.0))
        assert record == decode_record(format2)
        assert record.payload == plain
        assert [type(x) for _m, _v, x in record.payload.samples] == [float] * 4
    assert decode_record(encode_record("status_report", ident, StatusReport("w", 1), "ip", 2.0)).payload == (
        StatusReport("w", 1)
    )


@pytest.mark.parametrize("bad", [
    ("status_report", ["c", "u"], "ip", 1.0, ("w", 1, None, None, None, None, None), b"\0" * 8, [["m"], []]),
    ("status_report", ["c", "u"], "ip", 1.0, ("w", 1, None, None, None, None, None), b"\0" * 7, [["m"], ["v"]]),
    ("register", ["c", "u"], "ip", 1.0, ("w", 1, None, None, None, None, None), b"", [[], []]),
])
def test_malformed_columnar_records_are_refused(bad: tuple[Any, ...]) -> None:
    with pytest.raises((ValueError, TypeError)):
        decode_record(pack(bad))


async def _format2_calls(hub: Any) -> None:
    """The calls that wrote ``data/journal-format2/`` (wall time T0)."""
    await hub.register(RegisterRequest("w1", timeout=600, tags=("a",), system_tags=("s",)))
    for i in range(3):
        body = {"worker": "w1", "timestamp": int(T0 * 1000) + 10_000 * i, "task": "t1", "tags": ["x"],
                "machine_stats": {"cpu_usage": [10.5 + i, 20.25], "memory_used": 1024.0 * (i + 1),
                                  "gpu_temperature": [0.1 + i]}}
        await hub.status_report(parse_status_report(body))
    await hub.status_report(parse_status_report({"worker": "w2", "timestamp": int(T0 * 1000),
                                                 "machine_stats": {"memory_free": 3}}))
    await hub.unregister("w2")


async def _seen(hub: Any) -> tuple[Any, ...]:
    query = StatsQuery(T0 - 60, T0 + 120, 10, (StatsItem("cpu_usage"), StatsItem("memory_used"),
                                               StatsItem("gpu_temperature", "max"), StatsItem("memory_free")))
    # the wall times of the calls that wrote the file (a real clock) are not this test's
    untimed = [{k: v for k, v in w.items() if not k.endswith("_time") and k != "task"} for w in hub.get_all(0)]
    return untimed, hub.get_metric_keys(), await hub.get_stats(query)


async def test_a_format_2_journal_replays_as_this_build_replays_its_own(tmp_path: Path, mock_clock: Any) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    shutil.copy(Path(__file__).parent / "data" / "journal-format2" / "journal-00000000.wal", old)
    try:
        async with session(new) as (hub, _store):
            await _format2_calls(hub)
            raise Crash
    except* Crash:
        pass
    with open(new / "journal-00000000.wal", "rb") as f:
        f.readline()
        header = unpack(next(read_frames(f, (new / "journal-00000000.wal").stat().st_size))[1])
    assert header["format"] == JOURNAL_FORMAT == 3
    async with session(old, T0 + 60) as (hub, _store):
        from_old = await _seen(hub)
    async with session(new, T0 + 60) as (hub, _store):
        from_new = await _seen(hub)
    assert from_old == from_new
    workers = {w["id"] for w in from_old[0]}
    assert workers == {"w1"} and len(from_old[2]) == 2, from_old
