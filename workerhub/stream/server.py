"""The msgpack stream transport: a trio TCP listener serving the endpoint table over framed msgpack.

Each connection is one trio task that reads, runs and answers requests **in order, one at a time**
(docs/stream-protocol.md). That is the whole back-pressure story: the task decodes at most what one read
returned (``_RECEIVE_BYTES``) ahead of the call it is running, replies are flushed at least every
``_FLUSH_BYTES``, and while a call runs nothing more is read, so a client that sends faster than the
server answers is slowed by TCP flow control instead of growing a buffer here. Clients that want calls
to run concurrently open more connections.

Validation, errors and the envelope are the HTTP transport's: the call name goes through
:func:`~workerhub.api.endpoints.resolve` like a path, the body through the same handlers.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import msgpack
import trio

from ..actors import Hub
from ..api.auth import Authenticator
from ..api.endpoints import DEFAULT_VERSION, CallContext, dispatch, resolve
from ..api.envelope import envelope, error_envelope
from ..errors import BadRequest, EndpointNotFound, PayloadTooLarge, ServerError, WorkerhubError
from .framing import FrameDecoder, decode_request, encode_reply

__all__ = ["serve_stream", "STREAM_SCHEME"]

log = logging.getLogger(__name__)

STREAM_SCHEME = "msgpack"
"""URL scheme of the stream's address as :func:`serve_stream` reports it: ``msgpack://127.0.0.1:8009``."""

_RECEIVE_BYTES = 64 * 1024
# Replies go out at least every 16 KiB (~70 status_report replies): large enough to amortise the send,
# small enough that a pipelining client gets replies back, and refills, while the batch is still running.
_FLUSH_BYTES = 16 * 1024
_LINGER_SECONDS = 2.0


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
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound_host, bound_port = listeners[0].socket.getsockname()[:2]
    shown_host = f"[{bound_host}]" if ":" in bound_host else bound_host
    url = f"{STREAM_SCHEME}://{shown_host}:{bound_port}"
    log.info("msgpack stream listening on %s", url)

    async def handle(stream: trio.SocketStream) -> None:
        await _Connection(hub, stream, authenticator).run()

    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, handle, listeners)
        task_status.started(url)


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

    __slots__ = ("_hub", "_auth", "_stream", "_ip", "_limit", "_packer")

    def __init__(self, hub: Hub, stream: trio.SocketStream, authenticator: Authenticator) -> None:
        self._hub = hub
        self._auth = authenticator
        self._stream = stream
        try:
            self._ip = str(stream.socket.getpeername()[0])
        except OSError:
            self._ip = "untrackable"
        self._limit = hub.settings.max_body_bytes
        self._packer = msgpack.Packer(use_bin_type=True)

    async def run(self) -> None:
        stream = self._stream
        decoder = FrameDecoder(self._limit)
        try:
            async with stream:
                while True:
                    data = await stream.receive_some(_RECEIVE_BYTES)
                    if not data:
                        return
                    decoder.feed(data)
                    out = bytearray()
                    try:
                        for frame in decoder.frames():
                            out += await self._call(frame)
                            if len(out) >= _FLUSH_BYTES:
                                await stream.send_all(out)
                                out = bytearray()
                    except PayloadTooLarge as exc:
                        # The frame boundary is lost (we will not read the payload): answer and close.
                        _status, reply = error_envelope("", DEFAULT_VERSION, uuid.uuid4().hex, None, exc)
                        out += encode_reply(self._packer, None, reply)
                        await stream.send_all(out)
                        await _lingering_close(stream)
                        return
                    if out:
                        await stream.send_all(out)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return  # the client went away; nothing to answer
        except Exception:  # never let one connection take the listener down
            log.exception("msgpack stream connection from %s failed", self._ip)

    async def _call(self, frame: bytes) -> bytes:
        """Run one request frame and return its reply frame; every failure becomes an error reply."""
        call_id = uuid.uuid4().hex
        request_id: Any = None
        trx: Any = None
        name, version = "", DEFAULT_VERSION
        try:
            request = decode_request(frame, self._limit)
            request_id, trx = request.id, request.trx
            if not isinstance(trx, str):
                trx = None
            if not isinstance(request.call, str):
                raise BadRequest("call must be a string such as workers.status_report")
            name = request.call
            name, version = resolve("/" + name)
            # Checked before the body is parsed, as on HTTP: a missing token 401/20, a bad one 401/30.
            ctx = CallContext(identity=self._auth.identify_token(request.token, name), ip=self._ip)
            data = await dispatch(self._hub, name, request.body, ctx)
            reply = envelope(name, version, call_id, trx, data)
        except WorkerhubError as exc:
            if isinstance(exc, EndpointNotFound):
                name, version = exc.name, exc.version
            _status, reply = error_envelope(name, version, call_id, trx, exc)
        except Exception as exc:
            log.exception("unhandled error in %s", name)
            _status, reply = error_envelope(
                name, version, call_id, trx, ServerError(str(exc) or type(exc).__name__)
            )
        return encode_reply(self._packer, request_id, reply)
