"""Clients for both workerhub transports, for agents, relays and the benchmarks.

- :class:`HttpClient`: ClearML-style HTTP calls, JSON or msgpack bodies, one keep-alive connection.
- :class:`StreamClient`: the native msgpack stream, one persistent connection, pipelined
  :meth:`~StreamClient.call_many`.
- :func:`open_stream_client`: the same stream for trio code; any number of tasks share one connection.

Both return :class:`Reply` (``status``, ``meta``, ``data``; ``.ok``, ``.unwrap()``); server-side errors are
replies, :class:`CallError` is raised only by ``unwrap``. The first two are synchronous and not thread-safe.
:mod:`workerhub.client.shapes` types the replies whose shape depends on the API version (get_stats).
"""

from ._reply import CallError, Reply, StreamError
from .http import HttpClient
from .shapes import StatsReply, StatsReplyV232
from .stream import StreamClient
from .stream_trio import AsyncStreamClient, open_stream_client

__all__ = [
    "AsyncStreamClient",
    "CallError",
    "HttpClient",
    "Reply",
    "StatsReply",
    "StatsReplyV232",
    "StreamClient",
    "StreamError",
    "open_stream_client",
]
