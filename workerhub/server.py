"""Running a workerhub server: the hub and hypercorn in one trio nursery."""

from __future__ import annotations

import logging
import math
import resource
from collections.abc import Awaitable, Callable

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve

from .actors import Hub, open_hub
from .api import create_app
from .clock import Clock
from .config import Settings
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
    task_status: trio.TaskStatus[tuple[Hub, list[str]]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the workers API over HTTP until ``shutdown_trigger`` returns or the task is cancelled.

    State is loaded from and saved to ``settings.data_dir`` unless ``settings.persist`` is off (see
    docs/persistence.md); a snapshot is written after hypercorn stops, so a graceful stop loses nothing.
    With ``settings.msgpack_port`` set, the msgpack stream is served too, on that port. In-flight HTTP
    requests finish (up to 5 s) before the hub stops; stream connections are closed when HTTP has stopped.
    ``task_status.started((hub, urls))`` reports the hub and the bound URLs, port 0 resolved to the real
    port: the HTTP URLs, then ``msgpack://host:port`` when the stream is on.
    """
    settings = settings or Settings()
    _log_footprint(settings)
    _raise_fd_limit(settings)
    async with open_store(settings) as store, open_hub(settings, clock=clock, store=store) as hub:
        # serving: load saved state, snapshot periodically, and a final snapshot once hypercorn has stopped
        async with store.serving(hub):
            config = _hypercorn_config(settings)
            async with trio.open_nursery() as nursery:

                async def http(task_status: trio.TaskStatus[list[str]]) -> None:
                    app = create_app(hub)
                    await hypercorn_serve(app, config, shutdown_trigger=shutdown_trigger, task_status=task_status)
                    nursery.cancel_scope.cancel()  # HTTP has shut down gracefully: stop the stream listener too

                urls: list[str] = await nursery.start(http)
                if settings.msgpack_port is not None:
                    urls = [*urls, await nursery.start(serve_stream, hub)]
                task_status.started((hub, urls))


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
