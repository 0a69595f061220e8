"""What every client call returns: the envelope, split, with the transport's status."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack

__all__ = ["Reply", "CallError", "StreamError", "decode_stream_reply"]


@dataclass(frozen=True, slots=True)
class Reply:
    """One call's answer. ``status`` is the HTTP status (on the stream: ``meta.result_code``, which HTTP
    always equals); ``data`` is always a dict (``{}`` on errors)."""

    status: int
    meta: dict[str, Any]
    data: dict[str, Any]

    @property
    def code(self) -> tuple[int, int]:
        """``(result_code, result_subcode)``, e.g. ``(400, 12)`` for a validation error."""
        return self.meta["result_code"], self.meta["result_subcode"]

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.code == (200, 0)

    def unwrap(self) -> dict[str, Any]:
        """``data`` of a successful reply; raises :class:`CallError` otherwise."""
        if not self.ok:
            raise CallError(self)
        return self.data


class CallError(Exception):
    """The server answered with an error envelope; ``reply`` holds it, ``code``/``subcode``/``message`` the
    ClearML error. Retrying the same call unchanged fails again unless ``code`` is 500."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.code, self.subcode = reply.code
        self.message = str(reply.meta.get("result_msg", ""))
        super().__init__(f"{self.code}/{self.subcode}: {self.message}")


class StreamError(Exception):
    """The stream connection failed or the server broke it off (a reply with no matching id, e.g. the
    413 sent before closing on an oversized frame: then ``reply`` holds it). The connection is closed;
    calls whose replies did not arrive may or may not have run."""

    def __init__(self, message: str, reply: Reply | None = None) -> None:
        self.reply = reply
        super().__init__(message if reply is None else f"{message}: {reply.meta.get('result_msg')}")


def decode_stream_reply(frame: bytes) -> tuple[int | None, Reply]:
    """``(request id, reply)`` of one stream reply frame; the id is ``None`` when the frame has no integer
    ``id`` (a reply the server sends before breaking the connection off). Raises :class:`StreamError` for a
    frame that is not a reply."""
    try:
        doc = msgpack.unpackb(frame, raw=False, strict_map_key=False)
        meta = doc["meta"]
        reply = Reply(meta["result_code"], meta, doc["data"])
        request_id = doc.get("id")
    except Exception as exc:  # not msgpack, not a map, or a map without the envelope's keys
        raise StreamError(f"unreadable reply: {exc!r}") from None
    return (request_id if isinstance(request_id, int) and not isinstance(request_id, bool) else None), reply
