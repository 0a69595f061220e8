"""The on-disk encoding shared by snapshots and the journal: CRC-checked msgpack frames, versioned.

A file is a magic line followed by *frames*. A frame is ``<u32 length><u32 crc32>`` (little-endian) and then
``length`` bytes of msgpack; the first frame is a header map with ``format`` (:data:`SNAPSHOT_FORMAT` or
:data:`JOURNAL_FORMAT`).
Framing lets a reader tell the three ways a file can end:

* clean — the last frame is whole;
* torn — the last frame is incomplete (a crash mid-write): everything before it is intact;
* corrupt — a frame fails its CRC but more data follows: the file was damaged after it was written.

Values are plain msgpack: strings, numbers, lists, maps, and ``bin`` for the stats arrays (little-endian
int64 / float32 / float64, see :mod:`workerhub.stats.state`). Everything here is pure and
runs in worker threads.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import msgpack

from ..messages import Identity, RegisterRequest, StatusReport

__all__ = [
    "JOURNAL_FORMAT",
    "JOURNAL_MAGIC",
    "SNAPSHOT_FORMAT",
    "SNAPSHOT_MAGIC",
    "CorruptFrame",
    "PersistenceError",
    "Record",
    "TornTail",
    "check_format",
    "decode_record",
    "encode_record",
    "frame",
    "frame_head",
    "pack",
    "read_frames",
    "scan_frames",
    "unpack",
]

SNAPSHOT_FORMAT = 3
"""Bumped whenever the meaning of a snapshot frame changes. 2: float32 raw chunks plus 10 min / 1 h tiers,
series named in each history (1: float64 columns per series, no tiers; refused, never converted).
3: workers carry ``system_tags`` (format 2 snapshots still load: no system tags)."""
JOURNAL_FORMAT = 3
"""Bumped whenever the meaning of a journal record changes (records carry reports, not storage layout).
2: register and status_report records end with ``system_tags`` (format 1 records, without it, still load).
3: a status_report record is columnar (:func:`encode_record`); format 1 and 2 records still load."""
_READS = {"snapshot": (2, SNAPSHOT_FORMAT), "journal": (1, JOURNAL_FORMAT)}
"""Format versions this build reads, per kind of file: (oldest, newest)."""

SNAPSHOT_MAGIC = b"workerhub snapshot\n"
JOURNAL_MAGIC = b"workerhub journal\n"

_HEAD = struct.Struct("<II")
MAX_FRAME = 1 << 31
"""Frames larger than this are treated as damage (a history of 24 h at 10 s is ~2 MB)."""


class PersistenceError(Exception):
    """A data file cannot be used as it is. The message is one line naming the file and what to do.

    Raised at start; the server refuses to run rather than overwrite or ignore data it cannot read.
    """


class TornTail(Exception):
    """The file ends inside a frame at ``offset``: a write was cut short; the frames before it are intact."""

    def __init__(self, offset: int) -> None:
        super().__init__(f"torn frame at byte {offset}")
        self.offset = offset


class CorruptFrame(Exception):
    """A frame at ``offset`` fails its check and data follows it: the file was damaged."""

    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(f"corrupt frame at byte {offset}: {reason}")
        self.offset = offset


def pack(obj: Any) -> bytes:
    out: bytes = msgpack.packb(obj, use_bin_type=True)
    return out


def unpack(raw: bytes | memoryview) -> Any:
    return msgpack.unpackb(raw, raw=False, strict_map_key=False)


def frame(payload: bytes) -> bytes:
    """``payload`` with its length and CRC32 in front."""
    return _HEAD.pack(len(payload), zlib.crc32(payload)) + payload


def frame_head(payload: bytes) -> bytes:
    """Just the 8 bytes :func:`frame` puts in front of ``payload`` (write both, and save a copy of a big one)."""
    return _HEAD.pack(len(payload), zlib.crc32(payload))


def read_frames(f: BinaryIO, size: int) -> Iterator[tuple[int, bytes]]:
    """Yield ``(offset, payload)`` for each frame from the current position of ``f`` (``size`` = file size).

    Raises :class:`TornTail` when the last frame is incomplete, :class:`CorruptFrame` when a bad frame is
    followed by more data. A tail of zero bytes (what a file system may leave after a crash) counts as torn.
    """
    offset = f.tell()
    while offset < size:
        head = f.read(_HEAD.size)
        if len(head) < _HEAD.size:
            raise TornTail(offset)
        length, crc = _HEAD.unpack(head)
        end = offset + _HEAD.size + length
        if end > size:
            raise TornTail(offset)
        payload = f.read(length)
        if length == 0 or length > MAX_FRAME or zlib.crc32(payload) != crc:
            if end == size or _rest_is_zero(f, offset, size):
                raise TornTail(offset)
            raise CorruptFrame(offset, "checksum mismatch")
        yield offset, payload
        offset = end


def scan_frames(view: memoryview, offset: int) -> Iterator[tuple[int, memoryview]]:
    """:func:`read_frames` over a file already in memory (or mapped): ``(offset, payload)`` from byte
    ``offset`` of ``view`` to its end, each payload a slice of ``view`` (no copy), with the same checks and
    the same exceptions. A payload slice must be released (or dropped) before ``view``'s buffer is closed.
    """
    size = len(view)
    head_size = _HEAD.size
    unpack_head = _HEAD.unpack_from
    while offset < size:
        if offset + head_size > size:
            raise TornTail(offset)
        length, crc = unpack_head(view, offset)
        start = offset + head_size
        end = start + length
        if end > size:
            raise TornTail(offset)
        payload = view[start:end]
        if length == 0 or length > MAX_FRAME or zlib.crc32(payload) != crc:
            payload.release()
            if end == size or _zeros_from(view, offset):
                raise TornTail(offset)
            raise CorruptFrame(offset, "checksum mismatch")
        yield offset, payload
        offset = end


def _zeros_from(view: memoryview, offset: int) -> bool:
    step = 1 << 20
    for at in range(offset, len(view), step):
        with view[at : at + step] as part:
            if part.tobytes().count(0) != len(part):
                return False
    return True


def _rest_is_zero(f: BinaryIO, offset: int, size: int) -> bool:
    f.seek(offset)
    while chunk := f.read(1 << 20):
        if chunk.count(0) != len(chunk):
            return False
    return True


def check_format(header: Any, path: str, kind: str) -> dict[str, Any]:
    """Validate a file's header frame (``kind``: "snapshot" or "journal"); a format this build does not
    read, newer or older, stops the start with a one-line reason instead of being misread."""
    if not isinstance(header, dict) or not isinstance(header.get("format"), int):
        raise PersistenceError(f"{path}: not a workerhub {kind} (no header); move it out of the data directory")
    version = header["format"]
    oldest, newest = _READS[kind]
    if version > newest:
        raise PersistenceError(
            f"{path}: {kind} format {version} was written by a newer workerhub ({header.get('workerhub', '?')}); "
            f"this one reads format <= {newest}: upgrade workerhub, or move the data directory away"
        )
    if version < oldest:
        reads = str(oldest) if oldest == newest else f"{oldest}-{newest}"
        raise PersistenceError(
            f"{path}: {kind} format {version} was written by an older workerhub ({header.get('workerhub', '?')}) "
            f"with another stats layout; this one reads format {reads} and does not convert: "
            "move it out of the data directory (its data is then lost), or run the older workerhub"
        )
    return header


# --- journal records ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Record:
    """One accepted mutation as the hub saw it: ``op`` made by ``identity`` from ``ip`` at wall time ``at`` (s)."""

    op: str
    identity: Identity
    payload: Any
    ip: str
    at: float


def _identity(ident: Identity) -> list[str]:
    return [ident.company, ident.user, ident.company_name, ident.user_name]


def _tuple(v: Any) -> tuple[str, ...] | None:
    return None if v is None else tuple(v)


def encode_record(op: str, identity: Identity, payload: Any, ip: str, at: float) -> bytes:
    """The msgpack form of a journal record (not yet framed).

    ``register`` and ``unregister``: ``[op, identity, body, ip, at]``. ``status_report`` (format 3, on every
    report's path, so built for speed): ``[op, identity, ip, at, head, values, keys]`` with ``head`` the
    report's scalar fields, ``values`` its sample values as little-endian float64 ``bin`` and ``keys``
    ``[metrics, variants]``; the keys of a shape are packed once and their bytes reused (a fleet sends a
    few shapes), which saves packing 24 x 2 strings per report.
    """
    if op == "status_report":
        r: StatusReport = payload
        # tuples pack as msgpack arrays: no conversion needed
        head = (r.worker, r.timestamp, r.task, r.queue, r.queues, r.tags, r.system_tags)
        shape = r.shape
        if shape is not None:  # the parser's: the samples are zip(shape's keys, values), by construction
            values = r.values
            keys = _keys_of(shape)
        else:
            values = [x for _m, _v, x in r.samples]
            keys = _pack((tuple(m for m, _v, _x in r.samples), tuple(v for _m, v, _x in r.samples)))
        # A 6-element array packed, its one-byte header swapped for a 7-element one, the keys appended.
        front = _pack((op, _identity(identity), ip, at, head, _float64s(values)))
        return b"\x97" + front[1:] + keys
    if op == "register":
        q: RegisterRequest = payload
        body: Any = (q.worker, q.timeout, q.queues, q.tags, q.system_tags)
    elif op == "unregister":
        body = payload
    else:
        raise ValueError(f"unknown journal op {op!r}")
    return pack((op, _identity(identity), body, ip, at))


# One packer, not one per call (msgpack.packb makes one); encode_record runs on the event loop's thread only.
_pack = msgpack.Packer(use_bin_type=True).pack
_MAX_SHAPES = 1024
# shape -> its packed [metrics, variants]. Shapes are interned (stats.series.shape_of): a fleet has a few.
# Bounded all the same (cleared when full): a hostile client can make many.
_shape_keys: dict[Any, bytes] = {}


def _keys_of(shape: Any) -> bytes:
    packed = _shape_keys.get(shape)
    if packed is None:
        packed = _pack((shape.metrics, shape.variants))
        if len(_shape_keys) >= _MAX_SHAPES:
            _shape_keys.clear()
        _shape_keys[shape] = packed
    return packed


def _float64s(values: Any) -> bytes:
    n = len(values)
    return struct.pack(f"<{n}d", *values) if n else b""


def decode_record(raw: bytes) -> Record:
    """The inverse of :func:`encode_record`, for records of every format this build reads; raises
    ValueError (or TypeError) on a malformed record."""
    fields = unpack(raw)
    if len(fields) == 7:  # format 3 status_report
        op, ident, ip, at, head, packed, (metrics, variants) = fields
        if op != "status_report" or len(metrics) != len(variants) or len(packed) != 8 * len(metrics):
            raise ValueError("malformed status_report record")
        worker, ts, task, queue, queues, tags, system_tags = head
        values = struct.unpack(f"<{len(metrics)}d", packed)
        payload: Any = StatusReport(
            worker=worker,
            timestamp=ts,
            task=task,
            queue=queue,
            queues=_tuple(queues),
            samples=tuple(zip(metrics, variants, values)),
            tags=_tuple(tags),
            system_tags=_tuple(system_tags),
        )
        return Record(op, Identity(*ident), payload, str(ip), float(at))
    op, ident, body, ip, at = fields
    identity = Identity(*ident)
    if op == "status_report":  # formats 1 and 2
        worker, ts, task, queue, queues, samples, tags, *system = body  # format 1: no system_tags
        payload = StatusReport(
            worker=worker,
            timestamp=ts,
            task=task,
            queue=queue,
            queues=_tuple(queues),
            samples=tuple((m, v, float(x)) for m, v, x in samples),
            tags=_tuple(tags),
            system_tags=_tuple(system[0]) if system else None,
        )
    elif op == "register":
        worker, timeout, queues, tags, *system = body
        payload = RegisterRequest(
            worker=worker,
            timeout=timeout,
            queues=tuple(queues),
            tags=_tuple(tags),
            system_tags=_tuple(system[0]) if system else None,
        )
    elif op == "unregister":
        if not isinstance(body, str):
            raise ValueError("unregister record without a worker id")
        payload = body
    else:
        raise ValueError(f"unknown journal op {op!r}")
    return Record(op, identity, payload, str(ip), float(at))
