"""Body codecs: JSON (what ClearML clients send) and msgpack (a workerhub extension), with limits.

Decoding never raises anything but :class:`~workerhub.errors.WorkerhubError`: garbage is 400/0, an
oversized body 413, an unknown content type 415.
"""

from __future__ import annotations

from typing import Any

import msgpack
import orjson

from ..errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

__all__ = ["JSON", "MSGPACK", "MSGPACK_TYPES", "decode_body", "encode_body", "reply_type"]

JSON = "application/json"
MSGPACK = "application/vnd.msgpack"
MSGPACK_TYPES = frozenset({MSGPACK, "application/x-msgpack", "application/msgpack"})


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def decode_body(body: bytes, content_type: str | None, limit: int) -> Any:
    """Decode a request body; an empty body is ``{}`` (spec §0.1)."""
    if len(body) > limit:
        raise PayloadTooLarge(f"{len(body)} bytes, the limit is {limit}")
    if not body.strip():
        return {}
    media = _media_type(content_type)
    if media in MSGPACK_TYPES:
        try:
            # Container and string limits bounded by the body size: a small body cannot claim a huge
            # array. strict_map_key keeps map keys to str/bytes.
            return msgpack.unpackb(
                body,
                raw=False,
                strict_map_key=True,
                max_str_len=limit,
                max_bin_len=limit,
                max_array_len=len(body),
                max_map_len=len(body),
                max_ext_len=0,
            )
        except Exception as exc:  # msgpack raises many unrelated types for garbage
            raise BadRequest(f"invalid msgpack body: {exc}") from None
    if media and media != JSON and not media.endswith("+json") and media not in _TEXTUAL:
        raise UnsupportedMediaType(f"content type {media!r}; send {JSON} or {MSGPACK}")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"invalid JSON body: {exc}") from None


# Clients that send JSON without saying so (curl -d, some HTTP libraries).
_TEXTUAL = frozenset({"text/plain", "application/x-www-form-urlencoded", "application/octet-stream"})


def reply_type(accept: str | None, content_type: str | None) -> str:
    """msgpack when ``Accept`` asks for it; otherwise JSON, unless the request was msgpack and
    ``Accept`` does not name JSON (mirror the request)."""
    accepted = {_media_type(part) for part in (accept or "").split(",")}
    if accepted & MSGPACK_TYPES:
        return MSGPACK
    if JSON in accepted:
        return JSON
    return MSGPACK if _media_type(content_type) in MSGPACK_TYPES else JSON


def encode_body(data: Any, media: str) -> bytes:
    if media == MSGPACK:
        return msgpack.packb(data, use_bin_type=True)
    return orjson.dumps(data)
