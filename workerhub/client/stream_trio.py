"""An async (trio) client for the msgpack stream: many tasks share one connection.

A reader task matches replies to waiting callers by ``id``; a semaphore bounds the calls in flight, so a
burst of callers waits for replies instead of growing buffers. Use it from trio code (relays, async
agents); synchronous code uses :class:`~workerhub.client.StreamClient`.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import trio

from ..stream.framing import FrameDecoder, encode_request
from ._reply import Reply, StreamError, decode_stream_reply

__all__ = ["AsyncStreamClient", "open_stream_client"]

_RECEIVE_BYTES = 256 * 1024


class AsyncStreamClient:
    """Calls over one stream connection from any number of trio tasks. Create with :func:`open_stream_client`."""

    def __init__(
        self, stream: trio.SocketStream, *, token: str | None, window: int, max_reply_bytes: int
    ) -> None:
        self._stream = stream
        self._token = token
        self._ids = itertools.count(1)
        self._slots = trio.Semaphore(window)
        self._send_lock = trio.StrictFIFOLock()
        self._waiting: dict[int, tuple[trio.Event, list[Reply]]] = {}
        self._decoder = FrameDecoder(max_reply_bytes)
        self._failure: StreamError | None = None

    async def call(self, name: str, body: Any = None) -> Reply:
        """Send one call and wait for its :class:`Reply`; raises :class:`StreamError` if the connection fails."""
        async with self._slots:
            if self._failure is not None:
                raise self._failure
            request_id = next(self._ids)
            done = trio.Event()
            box: list[Reply] = []
            self._waiting[request_id] = (done, box)
            try:
                async with self._send_lock:
                    await self._stream.send_all(encode_request(request_id, name, body, token=self._token))
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                self._waiting.pop(request_id, None)
                raise StreamError(f"stream connection failed: {exc}") from exc
            await done.wait()
            if not box:
                raise self._failure or StreamError("the connection closed")
            return box[0]

    async def call_many(self, calls: Iterable[tuple[str, Any]]) -> list[Reply]:
        """Run ``(name, body)`` calls concurrently (bounded by the window); replies in the order of ``calls``."""
        items = list(calls)
        replies: list[Reply | None] = [None] * len(items)

        async def one(i: int, name: str, body: Any) -> None:
            replies[i] = await self.call(name, body)

        async with trio.open_nursery() as nursery:
            for i, (name, body) in enumerate(items):
                await self._slots.acquire()  # keep the nursery from holding more tasks than the window
                self._slots.release()
                nursery.start_soon(one, i, name, body)
        return replies  # type: ignore[return-value]

    async def _read_replies(self) -> None:
        try:
            while True:
                data = await self._stream.receive_some(_RECEIVE_BYTES)
                if not data:
                    raise StreamError("the server closed the connection")
                self._decoder.feed(data)
                for frame in self._decoder.frames():
                    request_id, reply = decode_stream_reply(frame)
                    waiter = None if request_id is None else self._waiting.pop(request_id, None)
                    if waiter is None:
                        raise StreamError("the server broke the connection off", reply)
                    waiter[1].append(reply)
                    waiter[0].set()
        except StreamError as exc:
            self._fail(exc)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self._fail(StreamError(f"stream connection failed: {exc}"))
        except Exception as exc:  # a too-large or unreadable frame
            self._fail(StreamError(f"unreadable reply: {exc}"))

    def _fail(self, error: StreamError) -> None:
        self._failure = error
        for done, _box in self._waiting.values():
            done.set()
        self._waiting.clear()


@asynccontextmanager
async def open_stream_client(
    url: str, *, token: str | None = None, window: int = 128, max_reply_bytes: int = 256 * 1024 * 1024
) -> AsyncIterator[AsyncStreamClient]:
    """Connect to ``msgpack://host:port`` for the duration of the block.

    >>> async with open_stream_client("msgpack://127.0.0.1:8009") as c:     # doctest: +SKIP
    ...     reply = await c.call("workers.get_all", {"last_seen": 0})
    """
    parts = urlsplit(url)
    if parts.scheme != "msgpack" or not parts.hostname or not parts.port:
        raise ValueError(f"expected a msgpack://host:port URL, got {url!r}")
    stream = await trio.open_tcp_stream(parts.hostname, parts.port)
    async with stream, trio.open_nursery() as nursery:
        client = AsyncStreamClient(stream, token=token, window=window, max_reply_bytes=max_reply_bytes)
        nursery.start_soon(client._read_replies)
        try:
            yield client
        finally:
            nursery.cancel_scope.cancel()
