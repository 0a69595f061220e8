"""A synchronous client for the msgpack stream, with pipelining (:meth:`StreamClient.call_many`).

One non-blocking socket driven by ``select``: while requests are still being written, replies are read
as they come, so a long pipeline can never deadlock on full socket buffers in both directions. Not
thread-safe: use one client per thread (or per process).
"""

from __future__ import annotations

import itertools
import select
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from ..stream.framing import FrameDecoder, encode_request
from ._reply import Reply, StreamError, decode_stream_reply

__all__ = ["StreamClient"]

_RECEIVE_BYTES = 256 * 1024


class StreamClient:
    """Calls over one persistent stream connection (docs/stream-protocol.md).

    ``url`` is ``msgpack://host:port`` (what the server prints and ``ServerHandle.stream_url`` holds).
    ``token`` goes into every request (credentials mode). ``timeout`` (seconds) bounds each wait for the
    socket; ``max_reply_bytes`` bounds one reply frame (a 24 h get_stats over a big fleet can be tens of MB).

    >>> with StreamClient("msgpack://127.0.0.1:8009") as c:     # doctest: +SKIP
    ...     replies = c.call_many(("workers.status_report", r) for r in reports)
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = 30.0,
        max_reply_bytes: int = 256 * 1024 * 1024,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme != "msgpack" or not parts.hostname or not parts.port:
            raise ValueError(f"expected a msgpack://host:port URL, got {url!r}")
        self._address = (parts.hostname, parts.port)
        self._token = token
        self._timeout = timeout
        self._max_reply = max_reply_bytes
        self._ids = itertools.count(1)
        self._sock: socket.socket | None = None
        self._decoder = FrameDecoder(max_reply_bytes)

    def call(self, name: str, body: Any = None) -> Reply:
        """Send one call and wait for its :class:`Reply` (errors are replies, not exceptions)."""
        return self.call_many([(name, body)])[0]

    def call_many(self, calls: Iterable[tuple[str, Any]], *, window: int = 128) -> list[Reply]:
        """Pipeline ``(call name, body)`` pairs; the replies, in the order of ``calls``.

        At most ``window`` requests are in flight: more are sent as replies arrive. The server runs a
        connection's requests in order, one after another, so later calls see the effects of earlier
        ones. ``calls`` may be a generator; it is consumed lazily. Raises :class:`StreamError` if the
        connection breaks (then it is closed; the next call reconnects).
        """
        sock = self._connect()
        token = self._token
        source = iter(calls)
        exhausted = False
        pending = bytearray()
        order: list[int] = []
        replies: dict[int, Reply] = {}
        in_flight = 0
        try:
            refill_at = window - max(1, window // 4)
            refilling = True
            while True:
                # Refill once a quarter of the window has drained: requests go out in writes of many
                # calls (not one syscall pair per call) while the server still has the rest to run.
                while not exhausted and in_flight < window and (in_flight <= refill_at or refilling):
                    item = next(source, None)
                    if item is None:
                        exhausted = True
                        break
                    request_id = next(self._ids)
                    order.append(request_id)
                    pending += encode_request(request_id, item[0], item[1], token=token)
                    in_flight += 1
                refilling = False
                if in_flight == 0:
                    return [replies.pop(i) for i in order]
                readable, writable, _ = select.select([sock], [sock] if pending else [], [], self._timeout)
                if not readable and not writable:
                    raise StreamError(f"no reply within {self._timeout} s")
                if writable:
                    try:
                        del pending[: sock.send(pending)]
                    except BlockingIOError:
                        pass
                if readable:
                    in_flight -= self._receive(sock, replies)
        except (OSError, StreamError) as exc:
            self.close()
            if isinstance(exc, StreamError):
                raise
            raise StreamError(f"stream connection failed: {exc}") from exc

    def _receive(self, sock: socket.socket, replies: dict[int, Reply]) -> int:
        try:
            data = sock.recv(_RECEIVE_BYTES)
        except BlockingIOError:
            return 0
        if not data:
            raise StreamError("the server closed the connection")
        self._decoder.feed(data)
        received = 0
        try:
            frames = list(self._decoder.frames())
        except Exception as exc:  # a frame larger than max_reply_bytes
            raise StreamError(f"unreadable reply: {exc}") from None
        for frame in frames:
            request_id, reply = decode_stream_reply(frame)
            if request_id is None or request_id in replies:
                raise StreamError("the server broke the connection off", reply)
            replies[request_id] = reply
            received += 1
        return received

    def _connect(self) -> socket.socket:
        if self._sock is None:
            sock = socket.create_connection(self._address, timeout=self._timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(False)
            self._sock = sock
            self._decoder = FrameDecoder(self._max_reply)
        return self._sock

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> StreamClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
