"""Clients for both workerhub transports, for agents, relays and the benchmarks.

- :class:`HttpClient`: ClearML-style HTTP calls, JSON or msgpack bodies, one keep-alive connection.
- :class:`StreamClient`: the native msgpack stream, one persistent connection, pipelined
  :meth:`~StreamClient.call_many`.

Both return :class:`Reply` (``status``, ``meta``, ``data``; ``.ok``, ``.unwrap()``); server-side errors are
replies, :class:`CallError` is raised only by ``unwrap``. Both are synchronous and not thread-safe.
"""

from ._reply import CallError, Reply, StreamError
from .http import HttpClient
from .stream import StreamClient

__all__ = ["CallError", "HttpClient", "Reply", "StreamClient", "StreamError"]
