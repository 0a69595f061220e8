"""Running a workerhub server: the hub and hypercorn in one trio nursery."""

from __future__ import annotations

import gc
import logging
import math
import resource
import threading
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve

from .actors import Hub, open_hub
from .api.http import create_asgi
from .clock import Clock
from .config import Settings
from .ops.http import ops_app
from .persistence import open_store
from .stats.footprint import retention_footprint
from .stream import serve_stream

__all__ = ["serve"]

log = logging.getLogger(__name__)


def _hypercorn_config(settings: Settings) -> HypercornConfig:
    config = HypercornConfig()
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    config.bind = [f"{host}:{settings.port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    config.graceful_timeout = 5.0
    # Limits, set deliberately (README "Limits"). hypercorn has no cap on connections: the fd limit is it
    # (raised to its hard limit by _raise_fd_limit); when it is reached, accept waits and retries.
    # - idle keep-alive connections, and a client still sending its request headers, are closed after
    #   http_keep_alive_timeout (the idle timer only stops once a whole request head has arrived);
    # - request heads are at most 16 KiB (h11_max_incomplete_size); bodies at most max_body_bytes and must
    #   arrive within quart's BODY_TIMEOUT (60 s), see api/http.py;
    # - read_timeout stays unset: it would also cut a client waiting for a long get_stats answer.
    config.keep_alive_timeout = settings.http_keep_alive_timeout
    config.h11_max_incomplete_size = 16 * 1024
    config.backlog = settings.listen_backlog
    if settings.testing:
        # Clock jumps (advance_clock) would fire the idle timer of every keep-alive connection at once,
        # closing connections under a client's next request.
        config.keep_alive_timeout = math.inf
    return config


async def serve(
    settings: Settings | None = None,
    *,
    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
    clock: Clock | None = None,
    on_listening: Callable[[list[str]], Awaitable[None]] | None = None,
    task_status: trio.TaskStatus[tuple[Hub, list[str]]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the workers API over HTTP until ``shutdown_trigger`` returns or the task is cancelled.

    State is loaded from and saved to ``settings.data_dir`` unless ``settings.persist`` is off (see
    docs/persistence.md); a snapshot is written after hypercorn stops, so a graceful stop loses nothing.
    With ``settings.msgpack_port`` set, the msgpack stream is served too, on that port. In-flight HTTP
    requests finish (up to 5 s) before the hub stops; stream connections are closed when HTTP has stopped.
    ``task_status.started((hub, urls))`` reports the hub and the bound URLs, port 0 resolved to the real
    port: the HTTP URLs, then ``http://host:port/metrics`` when ``metrics_port`` is set, then
    ``msgpack://host:port`` when the stream is on.

    Start order (docs/operations.md): the HTTP listener (and the metrics one) comes up first, so that
    ``/livez`` and ``/readyz`` answer while a large snapshot loads (``/readyz`` 503, workers.* calls 503);
    ``on_listening(urls)``, when given, is awaited then, before the load (tests hold a start there). Once
    the state is loaded the stream starts and ``task_status.started`` reports the server ready.
    """
    settings = settings or Settings()
    _log_footprint(settings)
    _raise_fd_limit(settings)
    async with open_store(settings) as store, open_hub(settings, clock=clock, store=store) as hub:
        hub.readiness.loading()
        config = _hypercorn_config(settings)
        http_stopped = trio.Event()
        async with trio.open_nursery() as nursery:

            async def http(task_status: trio.TaskStatus[list[str]]) -> None:
                app: Any = create_asgi(hub)  # a bare ASGI callable; hypercorn's type wants its framework union
                await hypercorn_serve(app, config, shutdown_trigger=shutdown_trigger, task_status=task_status)
                http_stopped.set()

            urls: list[str] = await nursery.start(http)
            if settings.metrics and settings.metrics_port is not None:
                urls = [*urls, await nursery.start(_serve_ops, hub)]
            if on_listening is not None:
                await on_listening(urls)
            if settings.persist:
                log.info("HTTP listening on %s; loading the saved state (/readyz: 503 until loaded)", urls[0])
            # serving: load saved state, snapshot periodically, and a final snapshot once hypercorn has stopped
            async with store.serving(hub):
                _settle_gc(settings)
                hub.readiness.loaded()
                async with trio.open_nursery() as listeners:
                    if settings.msgpack_port is not None:
                        urls = [*urls, await listeners.start(serve_stream, hub)]
                    task_status.started((hub, urls))
                    await http_stopped.wait()
                    listeners.cancel_scope.cancel()  # HTTP has shut down gracefully: stop the stream too
            nursery.cancel_scope.cancel()  # and the metrics listener, once the final snapshot is written


async def _serve_ops(hub: Hub, task_status: trio.TaskStatus[str]) -> None:
    """The metrics listener on ``metrics_port``: /metrics, /livez, /readyz only, on the same host."""
    settings = hub.settings
    config = _hypercorn_config(settings)
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    config.bind = [f"{host}:{settings.metrics_port}"]

    app: Any = ops_app(hub)  # a bare ASGI callable; hypercorn's type wants its framework union
    async with trio.open_nursery() as nursery:
        urls: list[str] = await nursery.start(partial(hypercorn_serve, app, config))
        task_status.started(urls[0] + "/metrics")


def _settle_gc(settings: Settings) -> None:
    """The cyclic collector's policy for a serving process (docs/benchmarks.md, "Tail latency").

    A full (generation 2) pass walks every tracked object and holds the event loop meanwhile: with the
    web stack's ~70k module objects and a loaded fleet, it was the largest stall a status_report saw. So,
    once the saved state is loaded: one collection, then ``gc.freeze()`` moves everything alive (modules,
    the loaded actors and histories) out of the collector's sight, and a higher generation 2 threshold
    keeps full passes off the fleet's growth phase (the 25 % growth rule of CPython still applies too).
    Frozen objects are still freed by reference counting; only a reference cycle among them that
    becomes garbage later (e.g. a loaded worker's actor when it expires) is never reclaimed: bounded by
    what the load held. Process-wide, so applied only when ``serve()`` runs on the main thread (the CLI),
    never inside an embedding process such as the test kit's server thread.
    """
    if not settings.gc_freeze or threading.current_thread() is not threading.main_thread():
        return
    gc.collect()
    gc.freeze()
    young, middle, _old = gc.get_threshold()
    gc.set_threshold(young, middle, settings.gc_full_threshold)


def _log_footprint(settings: Settings) -> None:
    one, ten = (retention_footprint(settings, n) for n in (1_000, 10_000))
    log.info(
        "retention keeps raw samples %.1f h and rollups %.1f days: about %.0f MB per 1,000 workers reporting "
        "24 values every 10 s (raw %.0f MB, tiers %.0f MB; %.1f GB for 10,000)",
        settings.raw_retention / 3600, max(settings.tier_retention, settings.raw_retention) / 86400,
        one.total / 1e6, one.raw / 1e6, one.tiers / 1e6, ten.total / 1e9,
    )


def _raise_fd_limit(settings: Settings) -> None:
    """Raise the soft limit on open files to the hard one: every connection is a file descriptor, and the
    usual soft default (1,024) is what bounds HTTP connections, since hypercorn has no cap of its own."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    except (OSError, ValueError) as exc:
        log.warning("could not raise the open-file limit: %s", exc)
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if settings.msgpack_port is not None and settings.stream_max_connections > soft // 2:
        log.warning(
            "stream_max_connections=%d is more than half the open-file limit (%d): stream connections can "
            "starve HTTP of file descriptors",
            settings.stream_max_connections, soft,
        )
