"""A small synchronous client for tests: one call, one dict back, or a typed error.

A thread-safe face on :class:`workerhub.client.HttpClient` (one keep-alive connection, JSON over POST, as
any ClearML-style caller sends): ``call(name, **body)`` returns ``data`` or raises :class:`ApiError`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Self

from ..client import HttpClient

__all__ = ["ApiError", "Client"]


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
        self.url = url.rstrip("/")
        # One keep-alive connection; a connection the server closed while idle (a clock jump past the
        # keep-alive timeout does that) is reopened once by HttpClient, never re-running a call.
        self._http = HttpClient(url, timeout=timeout, headers=headers)
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
        with self._lock:
            if self._closed:
                raise RuntimeError(f"this client of {self.url} is closed")
            try:
                reply = self._http.call(endpoint, body)
            except ValueError as exc:  # not an envelope: a proxy, a non-workerhub server, a refusal
                raise ApiError(endpoint, 0, 0, str(exc)) from None
        if not reply.ok:
            meta = reply.meta
            raise ApiError(endpoint, meta["result_code"], meta["result_subcode"], meta["result_msg"], reply.data)
        return reply.data

    def close(self) -> None:
        """Close the connection; further calls raise ``RuntimeError``."""
        with self._lock:
            self._closed = True
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
