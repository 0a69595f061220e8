"""The msgpack stream transport: a trio TCP listener serving the endpoint table over framed msgpack.

Each connection is one trio task that reads, runs and answers requests **in order, one at a time**
(docs/stream-protocol.md). That is the whole back-pressure story: the task decodes at most what one read
returned (``_RECEIVE_BYTES``) ahead of the call it is running, replies are flushed at least every
``_FLUSH_BYTES``, and while a call runs nothing more is read, so a client that sends faster than the
server answers is slowed by TCP flow control instead of growing a buffer here. Clients that want calls
to run concurrently open more connections.

Validation, errors and the envelope are the HTTP transport's: the call name goes through
:func:`~workerhub.api.endpoints.resolve` like a path, the body through the same handlers.

Limits (settings, docs/stream-protocol.md "Limits"): at most ``stream_max_connections`` connections (one
more is answered 503 and closed), ``stream_idle_timeout`` between requests, ``stream_frame_timeout`` to
complete a frame once its first byte arrived, and ``stream_buffer_bytes`` of unprocessed input across all
connections (a read that would pass it is answered 503 and its connection closed). Timeouts are judged on
real time, so the clock jumps of testing mode never close a connection.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import msgpack
import trio

from ..actors import Hub
from ..api.auth import Authenticator
from ..api.endpoints import DEFAULT_VERSION
from ..api.envelope import error_envelope
from ..api.pipeline import new_call_id, run_call
from ..config import Settings
from ..errors import (
    BadRequest,
    PayloadTooLarge,
    ServiceUnavailable,
    WorkerhubError,
)
from .framing import FrameDecoder, decode_request_fields, encode_reply

__all__ = ["STREAM_SCHEME", "serve_stream"]

log = logging.getLogger(__name__)

STREAM_SCHEME = "msgpack"
"""URL scheme of the stream's address as :func:`serve_stream` reports it: ``msgpack://127.0.0.1:8009``."""

_RECEIVE_BYTES = 64 * 1024
# Replies go out at least every 16 KiB (~70 status_report replies): large enough to amortise the send,
# small enough that a pipelining client gets replies back, and refills, while the batch is still running.
_FLUSH_BYTES = 16 * 1024
_LINGER_SECONDS = 2.0


class _Budget:
    """What all connections of one listener share: the count of open connections and of buffered bytes."""

    __slots__ = ("buffered", "connections", "max_buffered", "max_connections")

    def __init__(self, settings: Settings) -> None:
        self.max_connections = settings.stream_max_connections
        self.max_buffered = settings.stream_buffer_bytes
        self.connections = 0
        self.buffered = 0


async def serve_stream(
    hub: Hub,
    *,
    host: str | None = None,
    port: int | None = None,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the stream on ``host``:``port`` until cancelled (default: the hub's ``host`` and ``msgpack_port``).

    ``task_status.started(url)`` reports ``msgpack://host:port`` with port 0 resolved to the bound port.
    Frames larger than ``Settings.max_body_bytes`` are refused (413) and close their connection.
    """
    settings = hub.settings
    authenticator = Authenticator(settings, hub.clock)  # per transport: its own cache of verified tokens
    host = settings.host if host is None else host
    port = (settings.msgpack_port or 0) if port is None else port
    listeners = await trio.open_tcp_listeners(port, host=host, backlog=settings.listen_backlog)
    bound_host, bound_port = listeners[0].socket.getsockname()[:2]
    shown_host = f"[{bound_host}]" if ":" in bound_host else bound_host
    url = f"{STREAM_SCHEME}://{shown_host}:{bound_port}"
    log.info("msgpack stream listening on %s", url)

    budget = _Budget(settings)

    async def handle(stream: trio.SocketStream) -> None:
        if budget.connections >= budget.max_connections:
            await _refuse(stream, f"{budget.connections} stream connections are open (stream_max_connections)")
            return
        budget.connections += 1
        try:
            with hub.metrics.stream_connection():
                await _Connection(hub, stream, authenticator, budget).run()
        finally:
            budget.connections -= 1

    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, handle, listeners)
        task_status.started(url)


def _error_frame(exc: WorkerhubError) -> bytes:
    """A reply frame with ``id`` nil for an error that is the connection's, not one request's."""
    _status, reply = error_envelope("", DEFAULT_VERSION, new_call_id(), None, exc)
    return encode_reply(msgpack.Packer(use_bin_type=True), None, reply)


async def _refuse(stream: trio.SocketStream, why: str) -> None:
    """Answer a connection over the limit with one 503 frame and close it, holding nothing for it."""
    with trio.move_on_after(_LINGER_SECONDS):
        try:
            async with stream:
                await stream.send_all(_error_frame(ServiceUnavailable(why)))
                await stream.send_eof()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass


async def _receive_before(stream: trio.SocketStream, deadline: float) -> bytes | None:
    """The next read, or None once ``time.monotonic()`` passes ``deadline``.

    trio's timers run on the run's clock, which testing mode jumps; a timer that fires early is re-armed
    for the real time left, so a jump never closes a connection.
    """
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        with trio.move_on_after(left):
            return bytes(await stream.receive_some(_RECEIVE_BYTES))


async def _lingering_close(stream: trio.SocketStream) -> None:
    """Close after an error reply so that the client can read it.

    Closing a socket with unread input makes the kernel send a reset, which discards the reply still
    queued on the client's side. So: end our direction, then read and drop what the client is still
    sending (never buffered), for at most ``_LINGER_SECONDS``.
    """
    with trio.move_on_after(_LINGER_SECONDS):
        await stream.send_eof()
        while await stream.receive_some(_RECEIVE_BYTES):
            pass


class _Connection:
    """One client connection: the read → run → reply loop."""

    __slots__ = ("_auth", "_budget", "_held", "_hub", "_ip", "_limit", "_packer", "_stream")

    def __init__(self, hub: Hub, stream: trio.SocketStream, authenticator: Authenticator, budget: _Budget) -> None:
        self._hub = hub
        self._budget = budget
        self._held = 0  # this connection's part of budget.buffered
        self._auth = authenticator
        self._stream = stream
        try:
            self._ip = str(stream.socket.getpeername()[0])
        except OSError:
            self._ip = "untrackable"
        self._limit = hub.settings.max_body_bytes
        self._packer = msgpack.Packer(use_bin_type=True)

    async def run(self) -> None:
        try:
            await self._serve()
        finally:
            self._budget.buffered -= self._held
            self._held = 0

    async def _send(self, data: bytes | bytearray) -> bool:
        """Send ``data``; False when the client has not taken it within ``stream_idle_timeout`` (it does
        not read its replies: the connection must close, or it would hold its buffer and slot for ever)."""
        with trio.move_on_after(self._hub.settings.stream_idle_timeout):
            await self._stream.send_all(data)
            return True
        log.info("stream connection from %s does not read its replies: closed", self._ip)
        return False

    def _hold(self, n: int) -> None:
        self._budget.buffered += n - self._held
        self._held = n

    async def _serve(self) -> None:
        stream = self._stream
        settings = self._hub.settings
        budget = self._budget
        decoder = FrameDecoder(self._limit)
        idle_deadline = time.monotonic() + settings.stream_idle_timeout
        frame_deadline = 0.0
        try:
            async with stream:
                while True:
                    partial = decoder.buffered > 0
                    data = await _receive_before(stream, frame_deadline if partial else idle_deadline)
                    if data is None:
                        if partial:
                            log.info("stream connection from %s: frame not completed in time, closed", self._ip)
                            late = BadRequest(
                                f"a frame was not completed within {settings.stream_frame_timeout} s "
                                "(stream_frame_timeout)"
                            )
                            if await self._send(_error_frame(late)):
                                await _lingering_close(stream)
                        return  # idle: close quietly, as an HTTP keep-alive timeout does
                    if not data:
                        return
                    if budget.buffered + len(data) > budget.max_buffered:
                        log.warning(
                            "stream connection from %s closed: %d bytes buffered across connections",
                            self._ip, budget.buffered,
                        )
                        full = ServiceUnavailable(
                            f"the server holds {budget.buffered} bytes of unprocessed stream input, the limit "
                            f"(stream_buffer_bytes) is {budget.max_buffered}"
                        )
                        if await self._send(_error_frame(full)):
                            await _lingering_close(stream)
                        return
                    decoder.feed(data)
                    self._hold(decoder.buffered)
                    out = bytearray()
                    completed = 0
                    try:
                        for frame in decoder.frames():
                            completed += 1
                            out += await self._call(frame)
                            if len(out) >= _FLUSH_BYTES:
                                if not await self._send(out):
                                    return
                                out = bytearray()
                    except PayloadTooLarge as exc:
                        # The frame boundary is lost (we will not read the payload): answer and close.
                        out += _error_frame(exc)
                        if await self._send(out):
                            await _lingering_close(stream)
                        return
                    self._hold(decoder.buffered)
                    now = time.monotonic()
                    if completed:
                        idle_deadline = now + settings.stream_idle_timeout
                    if decoder.buffered and (completed or not partial):  # a new frame has begun
                        frame_deadline = now + settings.stream_frame_timeout
                    if out and not await self._send(out):
                        return
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return  # the client went away; nothing to answer
        except Exception:  # never let one connection take the listener down
            log.exception("msgpack stream connection from %s failed", self._ip)

    async def _call(self, frame: bytes) -> bytes:
        """Run one request frame and return its reply frame; every failure becomes an error reply."""
        request_id: Any = None
        trx: str | None = None
        path = ""
        failure: WorkerhubError | None = None
        token: Any = None
        body: Any = None
        try:
            request_id, call, body, token, raw_trx = decode_request_fields(frame, self._limit)
        except WorkerhubError as exc:
            failure = exc
        else:
            trx = raw_trx if isinstance(raw_trx, str) else None
            if isinstance(call, str):
                path = call
            else:
                failure = BadRequest("call must be a string such as workers.status_report")
        _status, _name, reply = await run_call(
            self._hub,
            path,
            # Checked before the body is parsed, as on HTTP: a missing token 401/20, a bad one 401/30.
            identify=lambda name: self._auth.identify_token(token, name),
            decode=lambda: body,
            ip=self._ip,
            trx=trx,
            failure=failure,
        )
        return encode_reply(self._packer, request_id, reply)
