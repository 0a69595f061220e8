"""A real server in a background thread, controllable from synchronous test code."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import trio
import trio.testing

from ..actors import Hub
from ..config import Settings
from ..server import serve
from ..stream import STREAM_SCHEME

__all__ = ["ServerHandle", "running_server"]

T = TypeVar("T")


class ServerHandle:
    """A running server: its ``url``, and calls into its hub from the test's thread.

    ``stream_url`` is the msgpack stream's address (``msgpack://127.0.0.1:PORT``) when the server was
    started with ``msgpack_port`` set, else None.
    """

    def __init__(
        self, url: str, hub: Hub, token: trio.lowlevel.TrioToken, stream_url: str | None = None
    ) -> None:
        self.url = url
        self.hub = hub
        self.stream_url = stream_url
        self._token = token

    def run_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the server's trio thread and return its result."""
        return trio.from_thread.run_sync(fn, *args, trio_token=self._token)

    def reset(self) -> None:
        """Forget every worker and stat."""
        self.run_sync(self.hub.reset)

    def advance_clock(self, seconds: float) -> None:
        """Move the server's time forward by ``seconds``; timeouts that pass fire."""
        self.run_sync(self.hub.advance_clock, seconds)


@contextmanager
def running_server(**settings: Any) -> Iterator[ServerHandle]:
    """Start a workerhub on 127.0.0.1 and a free port for the duration of the block.

    ``settings`` are :class:`~workerhub.config.Settings` fields (``port`` defaults to 0 = free). The
    server runs in testing mode: its clock can be advanced.
    """
    config = Settings.from_mapping({"port": 0, "testing": True, **settings})
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
            trio.run(main, clock=trio.testing.MockClock(rate=1.0) if config.testing else None)
        except BaseException as exc:  # reported to the caller below
            box["error"] = exc

    thread = threading.Thread(target=thread_main, name="workerhub-server", daemon=True)
    thread.start()
    started.wait()
    if "handle" not in box:
        thread.join()
        raise RuntimeError("workerhub did not start") from box.get("error")
    try:
        yield box["handle"]
    finally:
        trio.from_thread.run_sync(box["stop"].set, trio_token=box["token"])
        thread.join()
        if "error" in box:
            raise box["error"]


async def _serve(settings: Settings, trigger: Callable[[], Any], task_status: Any) -> None:
    await serve(settings, shutdown_trigger=trigger, task_status=task_status)
