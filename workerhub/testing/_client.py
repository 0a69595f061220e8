"""A small synchronous client for tests: one call, one dict back, or a typed error.

Standard library only (``http.client``), one keep-alive connection per client, JSON bodies over POST, as
any ClearML-style caller would send them. It is meant for test code, not for agents in production: no auth
handshake, no retries beyond re-opening a connection the server closed while it sat idle.
"""

from __future__ import annotations

import http.client
import json
import threading
import urllib.parse
from collections.abc import Mapping
from typing import Any, Self

__all__ = ["ApiError", "Client"]

# Errors meaning "the server closed the idle keep-alive connection before we sent": the request was not
# processed, so sending it again on a fresh connection is safe. Moving a test server's clock past
# hypercorn's keep-alive timeout closes idle connections exactly this way.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


class ApiError(Exception):
    """The server answered a call with an error envelope.

    ``code`` is the HTTP status / ``meta.result_code`` (400, 401, 403, 404, ...), ``subcode`` the ClearML
    ``meta.result_subcode`` (e.g. 1004 = worker not registered), ``message`` the server's
    ``meta.result_msg``. ``data`` is the reply's ``data`` object (usually empty).
    """

    def __init__(self, endpoint: str, code: int, subcode: int, message: str, data: Any = None) -> None:
        self.endpoint = endpoint
        self.code = code
        self.subcode = subcode
        self.message = message
        self.data = {} if data is None else data
        super().__init__(f"{endpoint} failed with {code}/{subcode}: {message}")

    @property
    def codes(self) -> tuple[int, int]:
        """``(code, subcode)``, handy in assertions: ``assert err.codes == (400, 1004)``."""
        return self.code, self.subcode


class Client:
    """Calls a workerhub (or any ClearML-style API server) at ``url``.

    >>> client = Client("http://127.0.0.1:8008")             # doctest: +SKIP
    >>> client.call("workers.register", worker="w1", timeout=30)  # doctest: +SKIP
    {}

    ``timeout`` is the socket timeout in **seconds**. ``headers`` are sent with every call (e.g. an
    ``Authorization`` header for a server in credentials mode). Safe to share between threads: calls are
    serialised on the one connection.
    """

    def __init__(self, url: str, *, timeout: float = 10.0, headers: Mapping[str, str] | None = None) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"expected an http://host:port URL, got {url!r}")
        self.url = url.rstrip("/")
        self._host = parts.hostname
        self._port = parts.port or 80
        self._prefix = parts.path.rstrip("/")
        self._timeout = timeout
        self._headers = {"Content-Type": "application/json", "Accept": "application/json", **(headers or {})}
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()
        self._closed = False

    def call(self, endpoint: str, /, **body: Any) -> dict[str, Any]:
        """Call ``endpoint`` (e.g. ``"workers.get_all"``) with ``body`` as the JSON object; return ``data``.

        Raises :class:`ApiError` when the server answers with an error (any ``result_code`` but 200), and
        ``OSError`` when it cannot be reached.
        """
        return self.call_body(endpoint, body)

    def call_body(self, endpoint: str, body: Any) -> dict[str, Any]:
        """Like :meth:`call`, with the body given as any JSON value (to send what ``**`` cannot express)."""
        payload = json.dumps(body).encode()
        status, raw = self._post(f"{self._prefix}/{endpoint}", payload)
        try:
            reply = json.loads(raw)
            meta, data = reply["meta"], reply["data"]
            code, subcode, message = meta["result_code"], meta["result_subcode"], meta["result_msg"]
        except (ValueError, KeyError, TypeError):
            # not an envelope: a proxy, a non-workerhub server, or a transport-level refusal
            raise ApiError(endpoint, status, 0, raw.decode("utf-8", "replace")[:500]) from None
        if code != 200 or status != 200:
            raise ApiError(endpoint, code, subcode, message, data)
        if not isinstance(data, dict):
            raise ApiError(endpoint, status, 0, f"the reply's data is not an object: {data!r:.200}")
        return data

    def close(self) -> None:
        """Close the connection; further calls raise ``RuntimeError``."""
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _post(self, path: str, payload: bytes) -> tuple[int, bytes]:
        with self._lock:
            if self._closed:
                raise RuntimeError(f"this client of {self.url} is closed")
            reused = self._conn is not None
            try:
                return self._send(path, payload)
            except _STALE:
                self._drop()
                if not reused:
                    raise
            except BaseException:
                self._drop()
                raise
            try:
                return self._send(path, payload)
            except BaseException:
                self._drop()
                raise

    def _send(self, path: str, payload: bytes) -> tuple[int, bytes]:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        self._conn.request("POST", path, body=payload, headers=self._headers)
        response = self._conn.getresponse()
        raw = response.read()
        if response.will_close:
            self._drop()
        return response.status, raw

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
