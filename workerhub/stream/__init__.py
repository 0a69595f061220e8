"""The native msgpack stream transport: framing (sans-I/O) and the trio listener.

Wire format: docs/stream-protocol.md. Clients: :mod:`workerhub.client`.
"""

from .framing import FrameDecoder, StreamRequest, decode_request, encode_frame, encode_reply, encode_request
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
