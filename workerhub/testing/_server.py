"""A real server in a background thread, controllable from synchronous test code.

The server thread runs ``trio.run`` on a :class:`trio.testing.MockClock` at real speed (``rate=1``): time
flows as usual, and :meth:`ServerHandle.advance_clock` jumps it forward on top. The hub derives its wall
time from that same clock (:mod:`workerhub.clock`), so a jump moves expiry, ``last_seen`` and every
``*_time`` field together.
"""

from __future__ import annotations

import errno
import math
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import trio
import trio.testing

from ..actors import Hub
from ..config import Settings
from ..server import serve
from ..stream.server import STREAM_SCHEME
from ._client import Client

__all__ = ["ServerHandle", "ServerStartError", "ServerStoppedError", "check_seconds", "running_server"]

T = TypeVar("T")


class ServerStartError(RuntimeError):
    """The server could not start (e.g. its port is in use); the message says why, the cause is chained."""


class ServerStoppedError(RuntimeError):
    """A :class:`ServerHandle` was used after its ``with running_server()`` block ended (or it crashed)."""


def check_seconds(seconds: float) -> float:
    """Validate an ``advance_clock`` argument: a finite number of seconds >= 0."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"advance_clock takes a number of seconds, not {type(seconds).__name__}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"advance_clock: seconds must be finite and >= 0 (time only moves forward), got {seconds}")
    return float(seconds)


class ServerHandle:
    """A running workerhub: where it listens, a ready client, and control of its state and time.

    Get one from :func:`running_server`. Every method may be called from any thread but the server's own.
    """

    def __init__(
        self, url: str, hub: Hub, token: trio.lowlevel.TrioToken, stream_url: str | None = None
    ) -> None:
        self.url: str = url
        """Base URL, e.g. ``http://127.0.0.1:41234`` (no trailing slash)."""
        self.hub: Hub = hub
        """The in-process hub. Touch it only on the server's thread: through :meth:`run_sync`."""
        self.client: Client = Client(url)
        """A ready :class:`~workerhub.testing.Client` for this server."""
        self.stream_url: str | None = stream_url
        """The msgpack stream's address (``msgpack://127.0.0.1:PORT``) when started with ``msgpack_port``."""
        self._token = token
        self._stopped = False

    @property
    def settings(self) -> Settings:
        """The settings the server runs with (always ``testing=True``)."""
        return self.hub.settings

    def run_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the server's trio thread and return its result (e.g. ``hub.get_all``)."""
        return self._on_server(lambda: trio.from_thread.run_sync(fn, *args, trio_token=self._token))

    def run(self, afn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``await afn(*args)`` on the server's trio thread and return its result."""
        return self._on_server(lambda: trio.from_thread.run(afn, *args, trio_token=self._token))

    def _on_server(self, call: Callable[[], T]) -> T:
        self._check_running()
        try:
            if not trio.lowlevel.in_trio_run():
                return call()
            # Called from async code (e.g. a pytest-trio test): trio refuses blocking cross-thread calls
            # from inside a run, so make the call from a helper thread and wait for it (a few ms).
            if trio.lowlevel.current_trio_token() is self._token:
                raise RuntimeError("a ServerHandle cannot be used from the server's own trio thread")
            return _in_helper_thread(call)
        except trio.RunFinishedError:
            raise ServerStoppedError(f"the workerhub at {self.url} is no longer running") from None

    def reset(self) -> None:
        """Forget every worker, stat and metric key, and put the wall clock back to real time.

        When it returns the server answers as a new one would (no workers, no stats); the retired worker
        tasks wind down in the background. A few ms for 1,000 workers (``bench/bench_testing.py``).
        """
        self.run_sync(self.hub.reset)

    def settle(self) -> None:
        """Wait until every task of the server is blocked: in-flight work (requests, retiring workers) done."""
        self.run(trio.testing.wait_all_tasks_blocked)

    def advance_clock(self, seconds: float) -> None:
        """Move the server's time forward by ``seconds`` (>= 0); the timeouts that pass fire.

        When it returns, every worker whose deadline is now past is gone: get_all no longer lists it and
        unregister answers 400/1004. Workers with later deadlines are untouched.
        """
        seconds = check_seconds(seconds)
        self.run(self.hub.clock.advance_settled, seconds)

    def statistics(self) -> dict[str, int]:
        """What the hub holds right now: ``companies``, ``workers``, ``histories``, ``reports`` counts."""
        return self.run_sync(self.hub.statistics)

    def _check_running(self) -> None:
        if self._stopped:
            raise ServerStoppedError(
                f"the workerhub at {self.url} has stopped: use its handle inside the `with running_server()` block"
            )

    def _stop(self) -> None:
        self._stopped = True
        self.client.close()

    def __repr__(self) -> str:
        return f"<ServerHandle {self.url}{' stopped' if self._stopped else ''}>"


@contextmanager
def running_server(**settings: Any) -> Iterator[ServerHandle]:
    """Start a real workerhub (hypercorn, real socket) on 127.0.0.1 for the duration of the block.

    ``settings`` are :class:`~workerhub.config.Settings` fields, e.g. ``default_timeout=30``; ``port``
    defaults to 0 (a free port) and ``testing`` is always on (the clock can be advanced, ``debug.reset``
    and ``debug.advance_clock`` answer); state is kept in memory unless ``data_dir`` is given. Ready when the
    block is entered (a few ms after the call).

    >>> with running_server() as server:
    ...     server.client.call("workers.register", worker="w1", timeout=30)
    ...     server.advance_clock(31)
    ...     server.client.call("workers.get_all", last_seen=0)["workers"]
    {}
    []

    Raises :class:`ServerStartError` when the server cannot start (port in use, ...) and
    :class:`~workerhub.config.SettingsError` for an unknown setting or a value of the wrong type.
    """
    if settings.get("testing", True) is not True:
        raise ValueError("running_server always runs in testing mode; do not pass testing=False")
    config = Settings.from_mapping({"port": 0, "persist": "data_dir" in settings, **settings, "testing": True})
    started = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        stop = trio.Event()
        box["stop"] = stop
        box["token"] = trio.lowlevel.current_trio_token()
        try:
            async with trio.open_nursery() as nursery:
                hub, urls = await nursery.start(_serve, config, stop.wait)
                stream_url = next((u for u in urls if u.startswith(f"{STREAM_SCHEME}://")), None)
                box["handle"] = ServerHandle(urls[0], hub, box["token"], stream_url)
                started.set()
        finally:
            started.set()

    def thread_main() -> None:
        try:
            trio.run(main, clock=trio.testing.MockClock(rate=1.0))
        except BaseException as exc:  # noqa: BLE001 -- re-raised in the caller's thread below
            box["error"] = exc

    thread = threading.Thread(target=thread_main, name="workerhub-server", daemon=True)
    thread.start()
    started.wait()
    if "handle" not in box:
        thread.join()
        raise _start_error(config, box.get("error"))
    handle: ServerHandle = box["handle"]
    try:
        yield handle
    finally:
        handle._stop()
        try:
            trio.from_thread.run_sync(box["stop"].set, trio_token=box["token"])
        except trio.RunFinishedError:
            pass  # it already died; its error is raised below
        thread.join()
        if "error" in box:
            raise box["error"]


def _in_helper_thread(call: Callable[[], T]) -> T:
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # noqa: BLE001 -- re-raised in the caller's thread below
            box["error"] = exc

    thread = threading.Thread(target=target, name="workerhub-handle-call", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def _start_error(config: Settings, error: BaseException | None) -> ServerStartError:
    where = f"{config.host}:{config.port}"
    cause = error
    # hypercorn binds inside a nursery, so an OSError may arrive wrapped in an exception group
    while isinstance(cause, BaseExceptionGroup) and len(cause.exceptions) == 1:
        cause = cause.exceptions[0]
    if isinstance(cause, OSError) and cause.errno == errno.EADDRINUSE:
        exc = ServerStartError(f"workerhub could not listen on {where}: the address is already in use")
    elif isinstance(cause, OSError):
        exc = ServerStartError(f"workerhub could not listen on {where}: {cause.strerror or cause}")
    else:
        exc = ServerStartError(f"workerhub did not start on {where}: {cause!r}")
    exc.__cause__ = error
    return exc


async def _serve(settings: Settings, trigger: Callable[[], Any], task_status: Any) -> None:
    await serve(settings, shutdown_trigger=trigger, task_status=task_status)
