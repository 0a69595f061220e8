"""Reading the journal back at a start: every record of the segments after a snapshot's cut, in order.

The segment layout and the failure rules are the writer's (:mod:`.journal`); this module only reads.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

from .format import (
    JOURNAL_MAGIC,
    CorruptFrame,
    PersistenceError,
    Record,
    TornTail,
    check_format,
    decode_record,
    read_frames,
    unpack,
)
from .journal import segment_path, segments

__all__ = ["JournalScan", "scan_journal"]

log = logging.getLogger(__name__)

@dataclass(slots=True)
class JournalScan:
    """What :func:`scan_journal` found: the records in order, and the segments they came from."""

    records: list[Record]
    segments: list[int]
    torn: list[tuple[str, int]]  # (file, byte offset of the dropped torn record)
    bases: dict[int, int | None] = field(default_factory=dict)  # segment -> its header's base, when it has one


def scan_journal(directory: str, first: int) -> JournalScan:
    """Read every record of segments ``>= first`` in order.

    A torn record at the end of a segment (a crash mid-write) is dropped with a warning and every intact
    record before it is kept. A damaged record followed by more data, or a segment of a newer format, raises
    :class:`PersistenceError`: the records after the damage cannot be trusted, so the start stops.
    """
    scan = JournalScan([], [], [])
    for n in segments(directory):
        if n < first:
            continue
        path = segment_path(directory, n)
        scan.segments.append(n)
        for record in _read_segment(path, n, scan):
            scan.records.append(record)
    return scan


def _read_segment(path: str, n: int, scan: JournalScan) -> Iterator[Record]:
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        magic = f.read(len(JOURNAL_MAGIC))
        if magic != JOURNAL_MAGIC[: len(magic)]:
            raise PersistenceError(f"{path}: not a workerhub journal segment; move it out of the data directory")
        if len(magic) < len(JOURNAL_MAGIC):
            return  # created but never written: nothing to replay
        frames = read_frames(f, size)
        try:
            first = True
            for offset, payload in frames:
                if first:
                    header = check_format(unpack(payload), path, "journal")
                    if "base" in header:  # segments written before base existed say nothing
                        base = header["base"]
                        scan.bases[n] = None if base is None else int(base)
                    first = False
                    continue
                try:
                    yield decode_record(payload)
                except (ValueError, TypeError) as exc:
                    raise PersistenceError(
                        f"{path}: record at byte {offset} is not understood ({exc}); "
                        "move the file away to start without its records"
                    ) from exc
        except TornTail as torn:
            scan.torn.append((path, torn.offset))
            log.warning(
                "%s: dropped a torn last record at byte %d (a write cut short by a crash; it was never "
                "acknowledged); %d bytes ignored", path, torn.offset, size - torn.offset
            )
        except CorruptFrame as bad:
            raise PersistenceError(
                f"{path}: damaged at byte {bad.offset} with records after it; restore the file from a backup, "
                "or move it away to start without its records"
            ) from bad
