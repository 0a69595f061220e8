"""Tags and system_tags survive restarts (snapshot format 3, journal format 2), and the files the previous
release wrote (snapshot format 2, journal format 1: no system_tags) still load.

``data/release-format2/`` was written by workerhub before issue 10 (w1 registered with tags and reporting,
a clean stop; then w2 registered with tags in a session that crashed, so it is only in the journal).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from workerhub.messages import Identity, RegisterRequest, StatusReport
from workerhub.persistence.format import (
    SNAPSHOT_FORMAT,
    SNAPSHOT_MAGIC,
    decode_record,
    encode_record,
    pack,
    read_frames,
    unpack,
)

from .support import T0, session

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
        # the previous release's record: the same without the trailing system_tags
        old_op, old_ident, body, ip, at = unpack(encode_record(op, ident, payload, "ip", 1.0))
        old = decode_record(pack((old_op, old_ident, body[:-1], ip, at)))
        assert old.payload.tags == ("a",) and old.payload.system_tags is None
