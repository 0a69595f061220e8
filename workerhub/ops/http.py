"""The operations endpoints over HTTP: on the main Quart app, or on a listener of their own.

``GET /metrics`` (Prometheus text), ``GET /livez`` and ``GET /readyz`` (Kubernetes probes), and on the main
app ``GET /openapi.json`` (made by :mod:`workerhub.api.openapi`). None of them needs ClearML credentials:
in credentials mode, bind /metrics to a port of its own (``metrics_port``) when the main port is reachable
by people who should not read fleet figures.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from quart import Response, request
from werkzeug.exceptions import RequestEntityTooLarge

from .metrics import CONTENT_TYPE

if TYPE_CHECKING:
    from quart_trio import QuartTrio

    from ..actors.hub import Hub

__all__ = ["add_ops_routes", "ops_app", "ops_reply"]

_TEXT = "text/plain; charset=utf-8"

Reply = tuple[int, str, bytes]


def ops_reply(hub: Hub, path: str, *, metrics: bool) -> Reply | None:
    """``(status, content type, body)`` for an operations path, or None when ``path`` is not one."""
    if path == "/livez":
        return 200, _TEXT, b"ok\n"
    if path == "/readyz":
        reason = hub.readiness.reason()
        if reason is None:
            return 200, _TEXT, b"ok\n"
        return 503, _TEXT, f"not ready: {reason}\n".encode()
    if path == "/metrics" and metrics:
        return 200, CONTENT_TYPE, hub.metrics.render()
    return None


def add_ops_routes(app: QuartTrio, hub: Hub, *, openapi: bytes) -> None:
    """Add GET /livez, /readyz, /openapi.json (the encoded document) and, unless it is off or on its own
    port, /metrics to the main app."""
    settings = hub.settings
    metrics = settings.metrics and settings.metrics_port is None

    async def handle() -> Response:
        try:
            await request.get_data(cache=False)  # drained: an unread body would stall the keep-alive connection
        except RequestEntityTooLarge:
            return Response(b"request body too large\n", status=413, content_type=_TEXT,
                            headers={"Connection": "close"})
        reply = (200, "application/json", openapi) if request.path == "/openapi.json" else None
        reply = reply or ops_reply(hub, request.path, metrics=metrics)
        assert reply is not None  # only the paths below are routed here
        status, content_type, body = reply
        return Response(body, status=status, content_type=content_type, headers={"Cache-Control": "no-store"})

    paths = ["/livez", "/readyz", "/openapi.json", *(["/metrics"] if metrics else [])]
    for path in paths:
        app.add_url_rule(path, "ops" + path.replace("/", "_"), handle, methods=["GET"])


_Scope = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
_Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def ops_app(hub: Hub) -> Callable[[_Scope, _Receive, _Send], Awaitable[None]]:
    """A minimal ASGI app for the ``metrics_port`` listener: the operations paths only, GET only."""

    async def app(scope: _Scope, receive: _Receive, send: _Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        more = True
        while more:  # drain the body (bounded by hypercorn's own limits) before answering
            message = await receive()
            more = message.get("type") == "http.request" and bool(message.get("more_body"))
        reply = ops_reply(hub, scope["path"], metrics=True) if scope["method"] in ("GET", "HEAD") else None
        if reply is None:
            reply = (404, _TEXT, b"not found: this port serves GET /metrics, /livez and /readyz\n")
        status, content_type, body = reply
        headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})

    return app
