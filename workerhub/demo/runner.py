"""Sending a :class:`~workerhub.demo.fleet.Fleet`'s reports to a server: a backfill of past hours, then live.

A real client of the API (``workerhub.client``): HTTP, or the msgpack stream whose pipelined ``call_many``
writes a day of history for 50 workers in seconds.
"""

from __future__ import annotations

import base64
import logging
import math
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any, Literal, Self

from ..client import HttpClient, Reply, StreamClient, StreamError
from .fleet import DemoWorker, Fleet, _unit

__all__ = ["DemoError", "DemoRunner", "login"]

log = logging.getLogger(__name__)

Transport = Literal["http", "stream"]


class DemoError(RuntimeError):
    """The server refused a demo call (wrong URL, credentials, ...); the message says which call and why."""


def login(url: str, access_key: str, secret_key: str) -> str:
    """A token from ``auth.login`` with HTTP Basic credentials, as the ClearML clients get theirs."""
    basic = base64.b64encode(f"{access_key}:{secret_key}".encode()).decode()
    with HttpClient(url, headers={"Authorization": f"Basic {basic}"}) as client:
        reply = client.call("auth.login")
    if not reply.ok:
        raise DemoError(f"auth.login failed: {_why(reply)}")
    token: str = reply.data["token"]
    return token


class DemoRunner:
    """Drives ``fleet`` against the server at ``url``.

    ``transport="stream"`` sends over ``stream_url`` (``msgpack://host:port``); ``token`` is needed in
    credentials mode. Workers register with ``timeout`` seconds and report every ``interval`` seconds.
    Not thread-safe: one runner per thread.
    """

    def __init__(
        self,
        url: str,
        fleet: Fleet,
        *,
        transport: Transport = "http",
        stream_url: str | None = None,
        token: str | None = None,
        timeout: int = 120,
        interval: float = 10.0,
    ) -> None:
        if transport == "stream" and not stream_url:
            raise ValueError("the stream transport needs the server's msgpack://host:port address")
        if interval <= 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval}")
        self.fleet = fleet
        self.timeout = timeout
        self.interval = interval
        self.sent = 0
        """Calls sent so far (register, status_report, unregister)."""
        self._http = HttpClient(url, token=token)
        self._stream = StreamClient(stream_url, token=token) if transport == "stream" and stream_url else None
        self._registered: set[str] = set()

    def close(self) -> None:
        self._http.close()
        if self._stream is not None:
            self._stream.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, calls: Iterable[tuple[str, Any]]) -> None:
        if self._stream is not None:
            replies: Iterable[tuple[str, Reply]] = _named(calls, self._stream.call_many)
        else:
            replies = ((name, self._http.call(name, body)) for name, body in calls)
        for name, reply in replies:
            self.sent += 1
            if not reply.ok:
                raise DemoError(f"{name} failed: {_why(reply)}")

    def _register(self, w: DemoWorker) -> tuple[str, dict[str, Any]]:
        self._registered.add(w.id)
        kind = w.id.rsplit("-", 1)[0]
        tags = [kind, "autoscaled" if w.ephemeral else "static", "demo"]
        body = {"worker": w.id, "timeout": self.timeout, "queues": list(w.queues), "tags": tags}
        return "workers.register", body

    def backfill(self, seconds: float, *, step: float = 60.0, now: float | None = None) -> int:
        """Write the last ``seconds`` of history, a report per worker every ``step`` s; returns reports sent.

        Each worker registers before its first report (a server without auto-registration would refuse
        its reports); afterwards the registrations match the fleet at ``now``.
        """
        if step <= 0:
            raise ValueError(f"step must be > 0 seconds, got {step}")
        now = time.time() if now is None else now
        end = math.floor(now / step) * step
        times = [end - k * step for k in range(int(seconds // step), 0, -1)]
        fleet = self.fleet
        seen = [w for w in fleet.workers if any(fleet.present(w, t) for t in times)]

        reports = 0

        def calls() -> Iterator[tuple[str, Any]]:
            nonlocal reports
            for t in times:
                for w in seen:
                    if fleet.present(w, t):
                        if w.id not in self._registered:  # just before its first report: no early timeout
                            yield self._register(w)
                        reports += 1
                        yield "workers.status_report", fleet.report(w, t)

        self._send(calls())
        # the fleet as it is now: those gone leave, one that came up since the last step registers
        self._send(("workers.unregister", {"worker": w.id}) for w in seen if not self._leave(w, now))
        arrived = [w for w in fleet.workers if fleet.present(w, now) and w.id not in self._registered]
        self._send(self._register(w) for w in arrived)
        log.info("backfill: %d reports of %d workers over %.0f s", reports, len(seen), seconds)
        return reports

    def _leave(self, w: DemoWorker, t: float) -> bool:
        """True while ``w`` stays; once absent, forget it (it unregisters, or goes silent and times out)."""
        if self.fleet.present(w, t):
            return True
        self._registered.discard(w.id)
        return False

    def tick(self, now: float | None = None) -> None:
        """One round: workers that came up register, present ones report, gone ones leave.

        Half of the workers that go away unregister; the other half just stop reporting and time out.
        """
        now = time.time() if now is None else now
        fleet = self.fleet
        calls: list[tuple[str, Any]] = []
        for w in fleet.workers:
            if fleet.present(w, now):
                if w.id not in self._registered:
                    calls.append(self._register(w))
                calls.append(("workers.status_report", fleet.report(w, now)))
            elif w.id in self._registered:
                self._registered.discard(w.id)
                if _unit(fleet.seed, w.index, "leave", int(now // 3600)) < 0.5:
                    calls.append(("workers.unregister", {"worker": w.id}))
        self._send(calls)

    def run(self, stop: threading.Event) -> None:
        """Report every ``interval`` seconds until ``stop`` is set. A failed round is logged, not fatal."""
        while not stop.is_set():
            started = time.monotonic()
            try:
                self.tick()
            except (DemoError, StreamError, OSError) as exc:  # the server restarting, say: try again
                log.warning("demo round failed: %s", exc)
            stop.wait(max(0.0, self.interval - (time.monotonic() - started)))


def _named(calls: Iterable[tuple[str, Any]], call_many: Any) -> Iterator[tuple[str, Reply]]:
    names: list[str] = []

    def tap() -> Iterator[tuple[str, Any]]:
        for name, body in calls:
            names.append(name)
            yield name, body

    replies: list[Reply] = call_many(tap())
    return zip(names, replies, strict=True)


def _why(reply: Reply) -> str:
    meta = reply.meta or {}
    return f"{reply.status}/{meta.get('result_subcode')} {meta.get('result_msg', '')}".strip()
