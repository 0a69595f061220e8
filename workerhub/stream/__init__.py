"""The native msgpack stream transport: framing (sans-I/O) and the trio listener.

Wire format: docs/stream-protocol.md. Clients: :mod:`workerhub.client`.
"""

from typing import TYPE_CHECKING, Any

from .framing import FrameDecoder, StreamRequest, decode_request, encode_frame, encode_reply, encode_request

if TYPE_CHECKING:
    from .server import STREAM_SCHEME, serve_stream

__all__ = [
    "STREAM_SCHEME",
    "FrameDecoder",
    "StreamRequest",
    "decode_request",
    "encode_frame",
    "encode_reply",
    "encode_request",
    "serve_stream",
]


def __getattr__(name: str) -> Any:
    # The listener imports the hub and the API; loading it lazily keeps ``workerhub.client`` (which
    # shares only the framing) free of the server stack.
    if name in ("STREAM_SCHEME", "serve_stream"):
        from . import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
