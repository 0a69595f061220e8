"""Sans-I/O framing of the msgpack stream: length-prefixed frames, request maps and reply maps.

No sockets here: both the trio server and the synchronous client feed bytes in and take frames out, so the
wire format (docs/stream-protocol.md) is defined in exactly one place.

A **frame** is a 4-byte unsigned big-endian length ``N`` followed by ``N`` bytes holding one msgpack object.
A request frame holds a map ``{"id": any, "call": "workers.status_report", "body": {...}, "token": str}``;
its reply frame holds ``{"id": <the same id>, "meta": {...}, "data": {...}}`` (the HTTP envelope plus ``id``).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import msgpack

from ..errors import BadRequest, PayloadTooLarge

__all__ = [
    "HEADER_SIZE",
    "FrameDecoder",
    "StreamRequest",
    "decode_request",
    "decode_request_fields",
    "encode_frame",
    "encode_reply",
    "encode_request",
]

_HEADER = struct.Struct(">I")
HEADER_SIZE = _HEADER.size
"""Bytes of the length prefix in front of every frame."""

# A buffer this much larger than its unread part is compacted; below it, consumed frames are left in place
# so a read that carries many small frames costs one memmove, not one per frame.
_COMPACT_AT = 64 * 1024


class FrameDecoder:
    """Splits a byte stream into frames; each frame's payload is at most ``limit`` bytes.

    Feed whatever the socket returned with :meth:`feed`, then take complete frames with :meth:`frames`
    (or :meth:`next_frame`). A header announcing more than ``limit`` bytes raises
    :class:`~workerhub.errors.PayloadTooLarge` at once, before its payload is buffered, so a peer can never
    make the buffer grow past ``limit`` + one read.

    >>> d = FrameDecoder(limit=10)
    >>> d.feed(encode_frame(b"\\x01") + encode_frame(b"\\x02")[:3])
    >>> list(d.frames()), d.buffered
    ([b'\\x01'], 3)
    """

    __slots__ = ("_buf", "_limit", "_pos")

    def __init__(self, limit: int) -> None:
        self._buf = bytearray()
        self._pos = 0
        self._limit = limit

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a frame (a partial frame, or frames not yet taken)."""
        return len(self._buf) - self._pos

    def feed(self, data: bytes) -> None:
        if self._pos and (self._pos >= len(self._buf) or self._pos >= _COMPACT_AT):
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def next_frame(self) -> bytes | None:
        """The next complete frame's payload, or None until more bytes arrive."""
        buf, pos = self._buf, self._pos
        if len(buf) - pos < HEADER_SIZE:
            return None
        (size,) = _HEADER.unpack_from(buf, pos)
        if size > self._limit:
            raise PayloadTooLarge(f"a frame of {size} bytes, the limit is {self._limit}")
        end = pos + HEADER_SIZE + size
        if len(buf) < end:
            return None
        self._pos = end
        return bytes(buf[pos + HEADER_SIZE : end])

    def frames(self) -> Iterator[bytes]:
        """Every complete frame buffered so far, in order."""
        while (frame := self.next_frame()) is not None:
            yield frame


def encode_frame(payload: bytes) -> bytes:
    """``payload`` with its length prefix."""
    return _HEADER.pack(len(payload)) + payload


@dataclass(frozen=True, slots=True)
class StreamRequest:
    """One decoded request map. ``call`` is unchecked here (the server resolves it like an HTTP path)."""

    id: Any
    call: Any
    body: Any
    token: Any = None
    trx: Any = None


def decode_request(payload: bytes, limit: int) -> StreamRequest:
    """Decode a request frame's payload with the same msgpack limits as an HTTP msgpack body.

    Raises :class:`~workerhub.errors.BadRequest` (400/0) when the payload is not one msgpack map; the
    reply to that has ``id`` nil, since no id could be read. Unknown keys are ignored, a missing or nil
    ``body`` is ``{}`` (like an empty HTTP body).
    """
    return StreamRequest(*decode_request_fields(payload, limit))


def decode_request_fields(payload: bytes, limit: int) -> tuple[Any, Any, Any, Any, Any]:
    """:func:`decode_request`'s fields as a plain tuple ``(id, call, body, token, trx)``: the server's path
    (a frozen dataclass costs ~1 µs to build, a real share of a pipelined status_report)."""
    try:
        # The limits of an HTTP msgpack body: containers bounded by the frame size, so a small frame
        # cannot claim a huge array; map keys only str/bytes; no ext types.
        request = msgpack.unpackb(
            payload,
            raw=False,
            strict_map_key=True,
            max_str_len=limit,
            max_bin_len=limit,
            max_array_len=len(payload),
            max_map_len=len(payload),
            max_ext_len=0,
        )
    except Exception as exc:  # noqa: BLE001 -- msgpack raises many unrelated types for garbage
        raise BadRequest(f"invalid msgpack request: {exc}") from None
    if not isinstance(request, dict):
        raise BadRequest(
            f"a request is a msgpack map with keys id, call, body, token; got {type(request).__name__}"
        )
    get = request.get
    body = get("body")
    return get("id"), get("call"), {} if body is None else body, get("token"), get("trx")


def encode_request(
    request_id: Any, call: str, body: Any = None, *, token: str | None = None, trx: str | None = None
) -> bytes:
    """One request as a complete frame (header included); ``token`` and ``trx`` are sent only when set."""
    request: dict[str, Any] = {"id": request_id, "call": call, "body": {} if body is None else body}
    if token is not None:
        request["token"] = token
    if trx is not None:
        request["trx"] = trx
    return encode_frame(msgpack.packb(request, use_bin_type=True))


def encode_reply(packer: msgpack.Packer, request_id: Any, reply: dict[str, Any]) -> bytes:
    """A reply envelope ``{"meta", "data"}`` as a complete frame, with ``id`` echoing the request's.

    ``packer`` is reused across replies (one per connection) to spare its set-up per message.
    """
    payload: bytes = packer.pack({"id": request_id, "meta": reply["meta"], "data": reply["data"]})
    return _HEADER.pack(len(payload)) + payload
