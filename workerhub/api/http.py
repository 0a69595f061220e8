"""The HTTP transport: a quart-trio app that routes every ClearML-style path to the endpoint table.

One catch-all route: paths, versions and methods are resolved by :func:`endpoints.resolve` rather than by
the framework's router, because ClearML's rules (optional ``/vX.Y/``, trailing ``/``, GET with a body,
query string merged into the body) do not map onto a route table.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from quart import Response, request
from quart_trio import QuartTrio
from werkzeug.exceptions import RequestEntityTooLarge

from ..actors import Hub
from ..errors import EndpointNotFound, PayloadTooLarge, ServerError, UnsupportedMediaType, WorkerhubError
from . import auth, codec
from .auth import Authenticator
from .endpoints import DEFAULT_VERSION, CallContext, dispatch, resolve
from .envelope import envelope, error_envelope

__all__ = ["create_app"]

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
        call_id = uuid.uuid4().hex
        headers = _headers()
        trx = headers.get("X-ClearML-Trx") or headers.get("X-Trains-Trx")
        reply_media = codec.reply_type(headers.get("Accept"), headers.get("Content-Type"))
        name, version = path.strip("/"), DEFAULT_VERSION
        close = False
        try:
            # Read the body before anything can fail: a reply sent while the body is still unread
            # leaves a keep-alive connection stuck, and its next request is never answered.
            try:
                raw = await request.get_data(cache=False)
            except RequestEntityTooLarge:
                close = True  # the body stays unread: the connection cannot be reused
                raise PayloadTooLarge(f"the limit is {limit} bytes") from None
            name, version = resolve("/" + path)
            # Authenticate before decoding, as upstream: a bad token with a bad body is a 401.
            identity = authenticator.identify(
                headers.get("Authorization"),
                name,
                cookie_token=request.cookies.get(auth.COOKIE) if "cookie" in headers else None,
            )
            if headers.get("Content-Encoding"):
                raise UnsupportedMediaType(f"Content-Encoding {headers['Content-Encoding']!r}")
            # A falsy body (null, [], 0, "") counts as no body, as upstream's `json_body or form or {}`.
            body = codec.decode_body(raw, headers.get("Content-Type"), limit) or {}
            if request.query_string:
                body = _merge_query(body, request.args)
            ctx = CallContext(identity=identity, ip=_client_ip(headers))
            data = await dispatch(hub, name, body, ctx)
            status, reply = 200, envelope(name, version, call_id, trx, data)
        except WorkerhubError as exc:
            if isinstance(exc, EndpointNotFound):
                name, version = exc.name, exc.version
            status, reply = error_envelope(name, version, call_id, trx, exc)
        except Exception as exc:
            log.exception("unhandled error in %s", name)
            status, reply = error_envelope(name, version, call_id, trx, ServerError(str(exc) or type(exc).__name__))
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
    return app


class _Headers(dict[str, str]):
    """The request's headers read once: case-insensitive ``get`` and ``[]``, the first of repeated ones.

    Replaces werkzeug's ``Headers.get`` per lookup, which scans the list case-folding and builds an
    exception object for every header that is absent: the ~7 lookups per call cost ~150 µs, more than
    the whole status_report ingest (bench/breakdown_status_report.py).
    """

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
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
    for key in args.keys():
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
