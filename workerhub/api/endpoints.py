"""The endpoint table: call name → handler, shared by every transport (HTTP and the msgpack stream).

A handler takes the hub, the decoded body and the call context, and returns the reply's ``data`` object;
it raises :class:`~workerhub.errors.WorkerhubError` for anything the client did wrong.
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import trio
import trio.testing

from ..actors import Hub
from ..errors import BadRequest, EndpointNotFound, Forbidden, InvalidVersion, ValidationError
from ..messages import DEFAULT_IDENTITY, Identity
from . import parse
from .auth import Authenticator

__all__ = ["CallContext", "ENDPOINTS", "dispatch", "resolve", "DEFAULT_VERSION"]

DEFAULT_VERSION = "2.4"


@dataclass(frozen=True, slots=True)
class CallContext:
    """Who called, from where. ``ip`` is the client IP as upstream derives it (spec §0.1)."""

    identity: Identity = DEFAULT_IDENTITY
    ip: str = "untrackable"


Handler = Callable[[Hub, Any, CallContext], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    handler: Handler
    min_version: tuple[int, int]


async def _register(hub: Hub, body: Any, ctx: CallContext) -> dict[str, Any]:
    await hub.register(parse.parse_register(body), identity=ctx.identity, ip=ctx.ip)
    return {}


async def _unregister(hub: Hub, body: Any, ctx: CallContext) -> dict[str, Any]:
    await hub.unregister(parse.parse_unregister(body), identity=ctx.identity, ip=ctx.ip)
    return {}


async def _status_report(hub: Hub, body: Any, ctx: CallContext) -> dict[str, Any]:
    report = parse.parse_status_report(body, record_zero=hub.settings.fix_quirks)
    await hub.status_report(report, identity=ctx.identity, ip=ctx.ip)
    return {}


async def _get_all(hub: Hub, body: Any, ctx: CallContext) -> dict[str, Any]:
    return {"workers": hub.get_all(parse.parse_last_seen(body), identity=ctx.identity)}


async def _get_metric_keys(hub: Hub, body: Any, ctx: CallContext) -> dict[str, Any]:
    return {"categories": hub.get_metric_keys(parse.parse_worker_ids(body), identity=ctx.identity)}


async def _get_stats(hub: Hub, body: Any, ctx: CallContext) -> dict[str, Any]:
    return {"workers": await hub.get_stats(parse.parse_stats_query(body), identity=ctx.identity)}


async def _get_activity_report(hub: Hub, body: Any, ctx: CallContext) -> dict[str, Any]:
    return await hub.get_activity_report(parse.parse_activity_query(body), identity=ctx.identity)


async def _login(hub: Hub, body: Any, ctx: CallContext) -> dict[str, Any]:
    # The transport has already checked the credentials (Authenticator.identify) into ctx.identity.
    return Authenticator(hub.settings, hub.clock).login(ctx.identity, body)


async def _ping(hub: Hub, body: Any, ctx: CallContext) -> dict[str, Any]:
    return {"msg": "workerhub"}


def _require_testing(hub: Hub, name: str) -> None:
    # Clock control and reset would let any caller expire or wipe a real fleet: testing mode only.
    if not hub.settings.testing:
        raise Forbidden(f"{name} is only available when the server runs in testing mode (--testing)")


async def _advance_clock(hub: Hub, body: Any, ctx: CallContext) -> dict[str, Any]:
    """debug.advance_clock {seconds}: move time forward; expired workers are gone when it returns."""
    _require_testing(hub, "debug.advance_clock")
    seconds = body.get("seconds") if isinstance(body, dict) else None
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds < math.inf:
        raise ValidationError("seconds must be a finite number of seconds >= 0", field="seconds")
    # Let other in-flight requests finish before the jump, and expired actors retire after it.
    await trio.testing.wait_all_tasks_blocked()
    hub.advance_clock(seconds)
    await trio.testing.wait_all_tasks_blocked()
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
    "auth.login": Endpoint(_login, (1, 0)),
    "debug.ping": Endpoint(_ping, (1, 0)),
    "debug.advance_clock": Endpoint(_advance_clock, (1, 0)),
    "debug.reset": Endpoint(_reset, (1, 0)),
}

_PATH = re.compile(r"^/*(?:(v[^/]*)/)?([A-Za-z_]\w+\.[A-Za-z_]\w+)/?$")
_VERSION = re.compile(r"^v(\d+)\.(\d+)$")


def resolve(path: str) -> tuple[str, str]:
    """``(call name, requested version)`` for a request path, or the routing error (spec wire §1).

    ``/workers.get_all``, ``/v2.23/workers.get_all/`` → ``("workers.get_all", "2.23")``. Any version
    ≥ the endpoint's minimum serves the 2.4 behaviour; below it, or an unknown name, is 404.
    """
    m = _PATH.match(path)
    if m is None:
        raise BadRequest(f"Invalid request path {path}")
    raw_version, name = m.groups()
    version = DEFAULT_VERSION
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


async def dispatch(hub: Hub, name: str, body: Any, ctx: CallContext) -> dict[str, Any]:
    """Run call ``name`` (already resolved) and return its ``data``."""
    return await ENDPOINTS[name].handler(hub, body, ctx)
