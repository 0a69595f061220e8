"""A workerhub running elsewhere (another process, a container), driven over HTTP.

:class:`RemoteServer` offers the same surface as :class:`~workerhub.testing.ServerHandle` (``url``,
``client``, ``reset()``, ``advance_clock()``), so a test suite can run unchanged against an in-process server
or an external one (pytest ``--workerhub-url``). Reset and clock control go through ``debug.reset`` and
``debug.advance_clock``, which a server answers only when started in testing mode (``workerhub serve
--testing``); otherwise they fail with a 403 :class:`~workerhub.testing.ApiError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from ._client import ApiError, Client
from ._server import check_seconds

__all__ = ["RemoteServer", "WorkerhubServer"]


@runtime_checkable
class WorkerhubServer(Protocol):
    """What a test needs from a server, in process or not: the type of the ``workerhub`` fixtures."""

    url: str
    client: Client

    def reset(self) -> None:
        """Forget every worker, stat and metric key."""
        ...

    def advance_clock(self, seconds: float) -> None:
        """Move the server's time forward by ``seconds``; the timeouts that pass fire."""
        ...


class RemoteServer:
    """An external workerhub at ``url``, controlled through its ``debug.*`` calls (testing mode only).

    ``headers`` are sent with every call (e.g. ``Authorization`` for a server in credentials mode).
    """

    def __init__(self, url: str, *, headers: Mapping[str, str] | None = None, timeout: float = 10.0) -> None:
        self.url: str = url.rstrip("/")
        self.client: Client = Client(self.url, headers=headers, timeout=timeout)

    def check(self) -> None:
        """Fail now, with a clear message, unless the server is reachable and in testing mode."""
        try:
            self.client.call("debug.ping")
        except OSError as exc:
            raise ConnectionError(f"no workerhub answers at {self.url}: {exc}") from exc
        self.advance_clock(0)

    def reset(self) -> None:
        """``debug.reset``: forget every worker and stat on the server (all companies)."""
        self._debug("debug.reset")

    def advance_clock(self, seconds: float) -> None:
        """``debug.advance_clock``: move the server's time forward by ``seconds`` (>= 0)."""
        self._debug("debug.advance_clock", seconds=check_seconds(seconds))

    def close(self) -> None:
        self.client.close()

    def _debug(self, endpoint: str, **body: float) -> None:
        try:
            self.client.call(endpoint, **body)
        except ApiError as exc:
            if exc.code == 403:
                raise ApiError(
                    endpoint,
                    exc.code,
                    exc.subcode,
                    f"{exc.message}; start the server at {self.url} with `workerhub serve --testing`",
                    exc.data,
                ) from exc
            raise

    def __repr__(self) -> str:
        return f"<RemoteServer {self.url}>"
