"""The HTTP transport: a quart-trio app that routes every ClearML-style path to the endpoint table.

One catch-all route: paths, versions and methods are resolved by :func:`endpoints.resolve` rather than by
the framework's router, because ClearML's rules (optional ``/vX.Y/``, trailing ``/``, GET with a body,
query string merged into the body) do not map onto a route table.

:func:`create_asgi` puts a lean ASGI route in front of that app for the ``workers.*`` calls (GET, POST,
PUT): the same :func:`~.pipeline.run_call`, the same header, body, query-string and reply rules, without
Quart's per-request machinery (request/response objects, context locals, signals), which cost more than
the call itself (docs/benchmarks.md). Everything else (auth.login and its cookie, OPTIONS, other methods,
the ops routes) is Quart's.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import orjson
import trio
import werkzeug.exceptions
from quart import Response, request
from quart_trio import QuartTrio
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_cookie

from ..actors import Hub
from ..errors import BadRequest, MethodNotAllowed, PayloadTooLarge, UnsupportedMediaType, WorkerhubError
from ..messages import Identity
from ..ops.http import add_ops_routes
from . import auth, codec
from .auth import Authenticator
from .endpoints import DEFAULT_VERSION
from .envelope import error_envelope
from .openapi import openapi_document
from .pipeline import new_call_id, run_call

__all__ = ["create_app", "create_asgi"]

log = logging.getLogger(__name__)

_METHODS = ["GET", "POST", "PUT"]


def create_app(hub: Hub) -> QuartTrio:
    """The ASGI app serving ``hub``; run it on hypercorn's trio worker."""
    app = QuartTrio("workerhub")
    app.config["MAX_CONTENT_LENGTH"] = hub.settings.max_body_bytes
    if hub.settings.testing:
        # The clock jumps in testing mode: a jump past quart's 60 s response timeout cancels a response
        # still finishing its send, and the keep-alive connection then never answers its next request.
        app.config["RESPONSE_TIMEOUT"] = None
        app.config["BODY_TIMEOUT"] = None
    limit = hub.settings.max_body_bytes
    authenticator = Authenticator(hub.settings, hub.clock)

    async def call(path: str = "") -> Response:
        call_id = new_call_id()
        headers = _headers()
        trx = headers.get("X-ClearML-Trx") or headers.get("X-Trains-Trx")
        reply_media = codec.reply_type(headers.get("Accept"), headers.get("Content-Type"))
        close = False
        failure: WorkerhubError | None = None
        # Read the body before anything can fail: a reply sent while the body is still unread
        # leaves a keep-alive connection stuck, and its next request is never answered.
        try:
            raw = await request.get_data(cache=False, as_text=False, parse_form_data=False)
        except RequestEntityTooLarge:
            close = True  # the body stays unread: the connection cannot be reused
            raw, failure = b"", PayloadTooLarge(f"the limit is {limit} bytes")
        except Exception as exc:  # noqa: BLE001 -- e.g. the body did not arrive within quart's BODY_TIMEOUT
            close = True
            raw, failure = b"", BadRequest(f"the request body could not be read: {exc}")

        def identify(name: str) -> Identity:
            # Before decoding, as upstream: a bad token with a bad body is a 401.
            cookie = request.cookies.get(auth.COOKIE) if "cookie" in headers else None
            return authenticator.identify(headers.get("Authorization"), name, cookie_token=cookie)

        def decode() -> Any:
            if headers.get("Content-Encoding"):
                raise UnsupportedMediaType(f"Content-Encoding {headers['Content-Encoding']!r}")
            # A falsy body (null, [], 0, "") counts as no body, as upstream's `json_body or form or {}`.
            body = codec.decode_body(raw, headers.get("Content-Type"), limit) or {}
            if request.query_string:
                body = _merge_query(body, request.args)
            return body

        status, name, reply = await run_call(
            hub, path, identify=identify, decode=decode, ip=_client_ip(headers), trx=trx, call_id=call_id,
            failure=failure,
        )
        response = Response(codec.encode_body(reply, reply_media), status=status, content_type=reply_media)
        if name == "auth.login" and status == 200:
            token = reply["data"]["token"]
            response.set_cookie(auth.COOKIE, token, max_age=auth.TOKEN_LIFETIME, httponly=True, samesite="Strict")
        if close:
            response.headers["Connection"] = "close"
        return response

    async def options(path: str = "") -> Response:
        try:
            await request.get_data(cache=False)  # drained for the same reason as in `call`
        except RequestEntityTooLarge:
            return Response(b"", status=200, headers={"Connection": "close"})
        return Response(b"", status=200)

    async def not_allowed(error: Exception) -> Response:
        # An envelope, not werkzeug's HTML 405, for any other method (DELETE, TRACE, QUERY...): every reply
        # on a call path is one (found by fuzzing from /openapi.json).
        try:
            await request.get_data(cache=False)
        except RequestEntityTooLarge:
            pass
        exc = MethodNotAllowed(f"{request.method}; use {', '.join(_METHODS)}")
        status, reply = error_envelope(request.path.strip("/"), DEFAULT_VERSION, new_call_id(), None, exc)
        media = codec.reply_type(request.headers.get("Accept"), request.headers.get("Content-Type"))
        headers = {"Allow": ", ".join([*_METHODS, "OPTIONS"]), "Connection": "close"}
        return Response(codec.encode_body(reply, media), status=status, content_type=media, headers=headers)

    root_methods = _METHODS
    if hub.settings.dashboard:  # GET / is the dashboard's page; POST / still answers as the API
        from ..web import mount_dashboard

        mount_dashboard(app)
        root_methods = [m for m in _METHODS if m != "GET"]
    # No automatic OPTIONS on these rules: quart's would answer without draining the body.
    app.add_url_rule("/", "root", call, methods=root_methods, provide_automatic_options=False)
    app.add_url_rule("/<path:path>", "call", call, methods=_METHODS, provide_automatic_options=False)
    app.add_url_rule("/", "root_options", options, methods=["OPTIONS"])
    app.add_url_rule("/<path:path>", "options", options, methods=["OPTIONS"])
    app.register_error_handler(werkzeug.exceptions.MethodNotAllowed, not_allowed)
    # GET /livez, /readyz, /metrics, /openapi.json: no ClearML auth, no envelope
    add_ops_routes(app, hub, openapi=orjson.dumps(openapi_document(hub.settings)))
    return app


_Scope = dict[str, Any]
_Receive = Callable[[], Awaitable[dict[str, Any]]]
_Send = Callable[[dict[str, Any]], Awaitable[None]]
_ASGIApp = Callable[[_Scope, _Receive, _Send], Awaitable[None]]

# The lean route's paths: [/vX.Y]/workers.<name>[/]; the version and the name are checked by run_call.
_LEAN_PATH = re.compile(r"/(?:v[^/]*/)?workers\.[^/]*/?")
_LEAN_METHODS = frozenset(_METHODS)
# Quart's BODY_TIMEOUT: the body must arrive within it (none in testing mode, whose clock jumps)
_BODY_TIMEOUT = 60.0


def create_asgi(hub: Hub) -> _ASGIApp:
    """The ASGI app to serve: the lean route for ``workers.*`` calls in front of :func:`create_app`."""
    app = create_app(hub)
    limit = hub.settings.max_body_bytes
    body_timeout = math.inf if hub.settings.testing else _BODY_TIMEOUT
    authenticator = Authenticator(hub.settings, hub.clock)

    async def lean(scope: _Scope, receive: _Receive, send: _Send) -> None:
        call_id = new_call_id()
        headers = _Headers()
        for raw_name, raw_value in scope["headers"]:
            headers.setdefault(raw_name.decode("latin-1").lower(), raw_value.decode("latin-1"))
        trx = headers.get("X-ClearML-Trx") or headers.get("X-Trains-Trx")
        reply_media = codec.reply_type(headers.get("Accept"), headers.get("Content-Type"))
        # As in create_app's `call`: the body is read before anything can fail.
        raw, failure = await _read_body(receive, headers.get("Content-Length"), limit, body_timeout)
        if failure is _DISCONNECTED:
            return
        close = failure is not None

        def identify(name: str) -> Identity:
            cookie = parse_cookie(headers["cookie"]).get(auth.COOKIE) if "cookie" in headers else None
            return authenticator.identify(headers.get("Authorization"), name, cookie_token=cookie)

        def decode() -> Any:
            if headers.get("Content-Encoding"):
                raise UnsupportedMediaType(f"Content-Encoding {headers['Content-Encoding']!r}")
            body = codec.decode_body(raw, headers.get("Content-Type"), limit) or {}
            query = scope.get("query_string", b"")
            if query:
                pairs = parse_qsl(query.decode("utf-8", "replace"), keep_blank_values=True)
                body = _merge_query(body, MultiDict(pairs))
            return body

        client = scope.get("client")
        ip = headers.get("X-Forwarded-For") or headers.get("X-Real-IP") or (client[0] if client else "untrackable")
        status, _name, reply = await run_call(
            hub, scope["path"][1:], identify=identify, decode=decode, ip=ip, trx=trx, call_id=call_id,
            failure=failure,
        )
        payload = codec.encode_body(reply, reply_media)
        out = [(b"content-type", reply_media.encode()), (b"content-length", str(len(payload)).encode())]
        if close:
            out.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": payload, "more_body": False})

    async def asgi(scope: _Scope, receive: _Receive, send: _Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in _LEAN_METHODS
            and _LEAN_PATH.fullmatch(scope["path"]) is not None
        ):
            await lean(scope, receive, send)
        else:
            await app(scope, receive, send)  # type: ignore[arg-type]

    return asgi


_DISCONNECTED = BadRequest("the client went away")


async def _read_body(
    receive: _Receive, length: str | None, limit: int, timeout: float
) -> tuple[bytes, WorkerhubError | None]:
    """The request body, or the failure to answer instead (the body then stays unread: close after)."""
    if length is not None and length.isdigit() and int(length) > limit:
        return b"", PayloadTooLarge(f"the limit is {limit} bytes")
    parts: list[bytes] = []
    size = 0
    with trio.move_on_after(timeout):
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"", _DISCONNECTED
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return b"", PayloadTooLarge(f"the limit is {limit} bytes")
            parts.append(chunk)
            if not message.get("more_body", False):
                return b"".join(parts), None
    return b"", BadRequest(f"the request body could not be read: it did not arrive within {timeout:.0f} s")


class _Headers(dict[str, str]):
    """The request's headers read once: case-insensitive ``get`` and ``[]``, the first of repeated ones.

    Replaces werkzeug's ``Headers.get`` per lookup, which scans the list case-folding and builds an
    exception object for every header that is absent: the ~7 lookups per call cost ~150 µs, more than
    the whole status_report ingest (bench/breakdown_status_report.py).
    """

    def get(self, name: str, default: Any = None) -> Any:
        return dict.get(self, name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return dict.__getitem__(self, name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and dict.__contains__(self, name.lower())


def _headers() -> _Headers:
    out = _Headers()
    for name, value in request.headers.items():
        out.setdefault(name.lower(), value)
    return out


def _client_ip(headers: _Headers) -> str:
    """First of X-Forwarded-For (raw, not split: upstream does not), X-Real-IP, the peer (spec §0.1)."""
    return headers.get("X-Forwarded-For") or headers.get("X-Real-IP") or request.remote_addr or "untrackable"


def _scalar(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _merge_query(body: Any, args: Any) -> Any:
    """Merge query parameters into the body, overriding it, with upstream's conversions (wire §1):
    numbers and booleans parsed, ``a.b`` nests, repeated keys or ``key[]`` make a list."""
    if not isinstance(body, dict):
        return body
    merged = dict(body)
    for key in args:  # a MultiDict: each key once, its values by getlist
        values = [_scalar(v) for v in args.getlist(key)]
        is_list = key.endswith("[]")
        key = key.removesuffix("[]")
        value: Any = values if is_list or len(values) > 1 else values[0]
        *parents, leaf = key.split(".")
        target = merged
        for part in parents:
            nxt = target.get(part)
            if not isinstance(nxt, dict):
                nxt = target[part] = {}
            target = nxt
        target[leaf] = value
    return merged
