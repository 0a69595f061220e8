"""A synchronous HTTP client on the standard library's ``http.client``: one keep-alive connection.

No new dependency: agents already carry the standard library, and one persistent connection is all a
reporting agent needs. Not thread-safe: use one client per thread.
"""

from __future__ import annotations

import http.client
import socket
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

import msgpack
import orjson

from ._reply import Reply

__all__ = ["HttpClient"]

_MSGPACK = "application/vnd.msgpack"
_JSON = "application/json"


class HttpClient:
    """Calls ``/<call>`` (or ``/v<version>/<call>``) on a workerhub (or clearml-server) over HTTP/1.1.

    ``codec`` chooses the body and reply format: ``"json"`` as ClearML clients send, or ``"msgpack"``
    (a workerhub extension). ``token`` is sent as ``Authorization: Bearer``; ``headers`` go with every
    call. ``timeout`` is in seconds.

    >>> with HttpClient("http://127.0.0.1:8008") as c:          # doctest: +SKIP
    ...     c.call("workers.register", {"worker": "w1"}).unwrap()
    {}
    """

    def __init__(
        self,
        url: str,
        *,
        codec: Literal["json", "msgpack"] = "json",
        token: str | None = None,
        version: str | None = None,
        timeout: float = 30.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"expected an http://host:port URL, got {url!r}")
        self._host, self._port = parts.hostname, parts.port or 80
        self._prefix = parts.path.rstrip("/") + (f"/v{version}" if version else "")
        self._timeout = timeout
        self._msgpack = codec == "msgpack"
        media = _MSGPACK if self._msgpack else _JSON
        self._headers = {"Content-Type": media, "Accept": media}
        if token is not None:
            self._headers["Authorization"] = f"Bearer {token}"
        self._headers.update(headers or {})
        self._conn: http.client.HTTPConnection | None = None

    def call(self, name: str, body: Any = None, *, method: str = "POST") -> Reply:
        """Send one call and return its :class:`Reply` (errors are replies, not exceptions).

        A keep-alive connection the server closed while idle is reopened once, transparently; only
        failures before any reply byte arrived are retried, so a call never runs twice because of it.
        """
        payload = (
            msgpack.packb({} if body is None else body)
            if self._msgpack
            else orjson.dumps({} if body is None else body)
        )
        path = f"{self._prefix}/{name}"
        for attempt in (0, 1):
            reused = self._conn is not None
            conn = self._connection()
            try:
                conn.request(method, path, body=payload, headers=self._headers)
                response = conn.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError):
                self.close()
                if reused and attempt == 0:
                    continue
                raise
            raw = response.read()
            if response.getheader("Connection", "").lower() == "close":
                self.close()
            return _reply(response.status, raw, response.getheader("Content-Type", ""))
        raise AssertionError("unreachable")

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
            self._conn.connect()
            # Small request/reply pairs: do not let Nagle hold the request back.
            self._conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _reply(status: int, raw: bytes, content_type: str) -> Reply:
    media = content_type.split(";", 1)[0].strip().lower()
    try:
        doc = msgpack.unpackb(raw, raw=False) if media.endswith("msgpack") else orjson.loads(raw)
        meta, data = doc["meta"], doc["data"]
    except Exception as exc:
        raise ValueError(f"HTTP {status}: not a workerhub envelope ({exc}): {raw[:200]!r}") from None
    return Reply(status, meta, data if isinstance(data, dict) else {})
