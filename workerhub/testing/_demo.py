"""A demo fleet against a test server: data for dashboard and autoscaler tests (``running_demo``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ..demo import DemoRunner, Fleet
from ._remote import WorkerhubServer

__all__ = ["running_demo"]


@contextmanager
def running_demo(
    server: WorkerhubServer,
    workers: int = 10,
    *,
    backfill: float = 3600.0,
    step: float = 60.0,
    seed: int = 0,
    live: bool = False,
    interval: float = 10.0,
) -> Iterator[DemoRunner]:
    """Backfill ``backfill`` seconds of a demo fleet of ``workers`` into ``server``, then yield the runner.

    Over the msgpack stream when the server has one (``running_server(msgpack_port=0)``), else HTTP.
    With ``live`` the fleet keeps reporting every ``interval`` s in a thread until the block ends (then
    leave the runner to that thread: it is not thread-safe).
    Timestamps are wall-clock (``time.time()``), not the server's advanced clock.
    """
    stream = getattr(server, "stream_url", None)
    runner = DemoRunner(
        server.url,
        Fleet(workers, seed=seed),
        transport="stream" if stream else "http",
        stream_url=stream,
        interval=interval,
    )
    stop = threading.Event()
    thread = None
    try:
        if backfill:
            runner.backfill(backfill, step=step)
        if live:
            thread = threading.Thread(target=runner.run, args=(stop,), name="workerhub-demo", daemon=True)
            thread.start()
        yield runner
    finally:
        stop.set()
        if thread is not None:
            thread.join()
        runner.close()
