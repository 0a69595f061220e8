"""The endpoint table: call name → handler, shared by every transport (HTTP and the msgpack stream).

A handler takes the hub, the decoded body and the call context, and returns the reply's ``data`` object;
it raises :class:`~workerhub.errors.WorkerhubError` for anything the client did wrong.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..actors import Hub
from ..errors import (
    BadRequest,
    EndpointNotFound,
    Forbidden,
    InvalidVersion,
    ServiceUnavailable,
    ValidationError,
    WorkerhubError,
)
from ..messages import DEFAULT_IDENTITY, Identity
from . import parse
from .auth import Authenticator
from .dialect import LEGACY, Dialect, dialect_for
from .filters import compile_filter

__all__ = ["CallContext", "ENDPOINTS", "dispatch", "resolve", "DEFAULT_VERSION"]

DEFAULT_VERSION = "2.4"


@dataclass(frozen=True, slots=True)
class CallContext:
    """Who called, from where, at which API dialect. ``ip`` is the client IP as upstream derives it
    (spec §0.1); ``dialect`` is set by :func:`dispatch` from the path version (api.dialect)."""

    identity: Identity = DEFAULT_IDENTITY
    ip: str = "untrackable"
    dialect: Dialect = LEGACY


Handler = Callable[[Hub, Any, CallContext], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    handler: Handler
    min_version: tuple[int, int]


async def _register(hub: Hub, body: Any, ctx: CallContext) -> dict[str, Any]:
    # API >= 2.32: an absent, 0 or null timeout is the default timeout (2.4: 0/null are 400/1002)
    default = hub.settings.default_timeout if ctx.dialect.head else None
    await hub.register(parse.parse_register(body, default_timeout=default), identity=ctx.identity, ip=ctx.ip)
    return {}


async def _unregister(hub: Hub, body: Any, ctx: CallContext) -> dict[str, Any]:
    # An unknown worker: 400/1004 at 2.4, 200 at HEAD, unless auto_unregister is set either way.
    missing_ok = hub.settings.auto_unregister
    if missing_ok is None:
        missing_ok = ctx.dialect.head
    worker = parse.parse_unregister(body)
    await hub.unregister(worker, identity=ctx.identity, ip=ctx.ip, missing_ok=missing_ok)
    return {}


async def _status_report(hub: Hub, body: Any, ctx: CallContext) -> dict[str, Any]:
    report = parse.parse_status_report(
        body, record_zero=hub.settings.fix_quirks, max_variants=hub.settings.max_variants
    )
    await hub.status_report(report, identity=ctx.identity, ip=ctx.ip)
    return {}


async def _get_all(hub: Hub, body: Any, ctx: CallContext) -> dict[str, Any]:
    last_seen = parse.parse_last_seen(body)
    match = compile_filter(parse.parse_worker_filter(body), whole_id=hub.settings.fix_quirks)
    return {"workers": hub.get_all(last_seen, identity=ctx.identity, match=match, head=ctx.dialect.head)}


async def _get_count(hub: Hub, body: Any, ctx: CallContext) -> dict[str, Any]:
    last_seen = parse.parse_count_last_seen(body)
    match = compile_filter(parse.parse_worker_filter(body), whole_id=hub.settings.fix_quirks)
    return {"count": hub.count(last_seen, identity=ctx.identity, match=match)}


async def _get_metric_keys(hub: Hub, body: Any, ctx: CallContext) -> dict[str, Any]:
    return {"categories": hub.get_metric_keys(parse.parse_worker_ids(body), identity=ctx.identity)}


async def _get_stats(hub: Hub, body: Any, ctx: CallContext) -> dict[str, Any]:
    if ctx.dialect.head:
        return await _get_stats_grid(hub, body, ctx)
    return {"workers": await hub.get_stats(parse.parse_stats_query(body), identity=ctx.identity)}


async def _get_activity_report(hub: Hub, body: Any, ctx: CallContext) -> dict[str, Any]:
    if ctx.dialect.head:
        return await _get_activity_grid(hub, body, ctx)
    return await hub.get_activity_report(parse.parse_activity_query(body), identity=ctx.identity)


# --- API >= 2.32 (api-versions §4.5, §4.6) ---


async def _get_stats_grid(hub: Hub, body: Any, ctx: CallContext) -> dict[str, Any]:
    return {"workers": await hub.get_stats_grid(parse.parse_stats_query(body, head=True), identity=ctx.identity)}


async def _get_activity_grid(hub: Hub, body: Any, ctx: CallContext) -> dict[str, Any]:
    return await hub.get_activity_grid(parse.parse_activity_query(body), identity=ctx.identity)


async def _login(hub: Hub, body: Any, ctx: CallContext) -> dict[str, Any]:
    # The transport has already checked the credentials (Authenticator.identify) into ctx.identity.
    return Authenticator(hub.settings, hub.clock).login(ctx.identity, body)


async def _ping(hub: Hub, body: Any, ctx: CallContext) -> dict[str, Any]:
    return {"msg": "workerhub"}


def _require_testing(hub: Hub, name: str) -> None:
    # Clock control and reset would let any caller expire or wipe a real fleet: testing mode only.
    if not hub.settings.testing:
        raise Forbidden(f"{name} is only available when the server runs in testing mode (--testing)")


# Ten years. Found by fuzzing: a jump of 1e18 s left trio's clock where a float cannot hold a millisecond
# (its spacing there is 128 s), every short sleep expired at once and the server spun, never answering.
_MAX_JUMP = 10 * 365 * 86400


def _check_jump(body: Any) -> None:
    seconds = body.get("seconds") if isinstance(body, dict) else None
    if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and seconds > _MAX_JUMP:
        raise ValidationError(f"seconds must be at most {_MAX_JUMP} (ten years)", field="seconds")


async def _advance_clock(hub: Hub, body: Any, ctx: CallContext) -> dict[str, Any]:
    """debug.advance_clock {seconds}: move time forward; expired workers are gone when it returns."""
    _require_testing(hub, "debug.advance_clock")
    _check_jump(body)
    seconds = body.get("seconds") if isinstance(body, dict) else None
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds < math.inf:
        raise ValidationError("seconds must be a finite number of seconds >= 0", field="seconds")
    await hub.clock.advance_settled(seconds)
    return {}


async def _reset(hub: Hub, body: Any, ctx: CallContext) -> dict[str, Any]:
    """debug.reset: forget every worker and stat (all companies); wall time back to real time."""
    _require_testing(hub, "debug.reset")
    hub.reset()
    return {}


_V24 = (2, 4)
ENDPOINTS: dict[str, Endpoint] = {
    "workers.register": Endpoint(_register, _V24),
    "workers.unregister": Endpoint(_unregister, _V24),
    "workers.status_report": Endpoint(_status_report, _V24),
    "workers.get_all": Endpoint(_get_all, _V24),
    "workers.get_metric_keys": Endpoint(_get_metric_keys, _V24),
    "workers.get_stats": Endpoint(_get_stats, _V24),
    "workers.get_activity_report": Endpoint(_get_activity_report, _V24),
    # upstream registers get_count without min_version, so the decorator's 1.0 (api-versions §0.1)
    "workers.get_count": Endpoint(_get_count, (1, 0)),
    "auth.login": Endpoint(_login, (1, 0)),
    "debug.ping": Endpoint(_ping, (1, 0)),
    "debug.advance_clock": Endpoint(_advance_clock, (1, 0)),
    "debug.reset": Endpoint(_reset, (1, 0)),
}

_PATH = re.compile(r"^/*(?:(v[^/]*)/)?([A-Za-z_]\w+\.[A-Za-z_]\w+)/?$")
_VERSION = re.compile(r"^v(\d{1,9})\.(\d{1,9})$")  # bounded: int() of 5,000 digits raises


def resolve(path: str, unversioned: str = DEFAULT_VERSION) -> tuple[str, str]:
    """``(call name, requested version)`` for a request path, or the routing error (spec wire §1).

    ``/v2.23/workers.get_all/`` → ``("workers.get_all", "2.23")``; ``/workers.get_all`` → the version
    ``unversioned`` (the server's ``max_api_version``). Below the endpoint's minimum, or an unknown
    name, is 404. The version picks the dialect (api.dialect) in :func:`dispatch`.
    """
    m = _PATH.match(path)
    if m is None:
        raise BadRequest(f"Invalid request path {path}")
    raw_version, name = m.groups()
    version = unversioned
    if raw_version is not None:
        vm = _VERSION.match(raw_version)
        if vm is None:
            raise InvalidVersion(version=raw_version)
        version = f"{int(vm[1])}.{int(vm[2])}"
    endpoint = ENDPOINTS.get(name)
    if endpoint is None or _as_tuple(version) < endpoint.min_version:
        raise EndpointNotFound(name, version)
    return name, version


def _as_tuple(version: str) -> tuple[int, int]:
    major, minor = version.split(".")
    return int(major), int(minor)


# Calls that touch no hub state: answered while the saved state is still loading.
_STATELESS = frozenset({"auth.login", "debug.ping"})


async def dispatch(
    hub: Hub, name: str, body: Any, ctx: CallContext, version: str | None = None
) -> dict[str, Any]:
    """Run call ``name`` (already resolved) at the requested ``version`` and return its ``data``; counted
    in /metrics, for both transports.

    The one place the dialect is chosen: ``version`` capped at ``max_api_version`` (``None``: the
    context's own dialect).
    """
    started = time.perf_counter()
    code = 500
    try:
        if not hub.readiness.serving and name not in _STATELESS:
            # Not queued: a large snapshot loads for minutes, and ClearML clients retry a 503 on their own.
            raise ServiceUnavailable("the server is starting: its saved state is loading; retry shortly")
        if version is not None:
            # not dataclasses.replace: it inspects the fields on every call (~1 µs on the status_report path)
            ctx = CallContext(ctx.identity, ctx.ip, dialect_for(version, hub.settings.max_api_version))
        data = await ENDPOINTS[name].handler(hub, body, ctx)
        code = 200
        return data
    except WorkerhubError as exc:
        code = exc.code
        raise
    finally:
        hub.metrics.observe(name, code, time.perf_counter() - started)
