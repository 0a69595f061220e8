"""One call, whatever the transport: resolve the name, authenticate, decode the body, dispatch, envelope.

HTTP (:mod:`workerhub.api.http`) and the msgpack stream (:mod:`workerhub.stream.server`) both run every call
through :func:`run_call`; they differ only in how bytes become a path, credentials and a body, and in how
the reply goes back. So the order of the checks (a bad path before a bad token, a bad token before a bad
body, as upstream), the error mapping and the envelope are the same on both by construction.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable
from typing import Any

from ..actors import Hub
from ..errors import EndpointNotFound, ServerError, WorkerhubError
from ..messages import Identity
from .endpoints import DEFAULT_VERSION, CallContext, dispatch, resolve
from .envelope import envelope, error_envelope

__all__ = ["new_call_id", "run_call"]

log = logging.getLogger(__name__)

# Call ids only need to be unique, not secret: 128 random bits from a generator seeded once from the OS
# (~0.3 µs) instead of uuid4 (~2 µs: a system call and a UUID object per call). Same form: 32 hex digits.
_ids = random.Random()
os.register_at_fork(after_in_child=_ids.seed)  # a forked process must not repeat its parent's ids


def new_call_id() -> str:
    """A fresh call id (the envelope's ``meta.id``): 32 lowercase hex digits."""
    return _ids.getrandbits(128).to_bytes(16, "big").hex()


_MAX_RESOLVED = 256
# (path, max_api_version) -> resolve()'s answer, for the paths clients actually call (a handful); bounded,
# as paths are the client's to choose. Failures are not kept: they raise, and they are rare.
_resolved: dict[tuple[str, str], tuple[str, str]] = {}


def _resolve(path: str, unversioned: str) -> tuple[str, str]:
    key = (path, unversioned)
    hit = _resolved.get(key)
    if hit is None:
        hit = resolve("/" + path, unversioned)
        if len(_resolved) >= _MAX_RESOLVED:
            _resolved.clear()
        _resolved[key] = hit
    return hit


async def run_call(
    hub: Hub,
    path: str,
    *,
    identify: Callable[[str], Identity],
    decode: Callable[[], Any],
    ip: str,
    trx: str | None = None,
    call_id: str | None = None,
    failure: WorkerhubError | None = None,
) -> tuple[int, str, dict[str, Any]]:
    """Run the call at ``path`` (``workers.get_all``, ``/v2.23/workers.get_all/``); ``(status, call name,
    reply envelope)``, never an exception.

    ``identify(name)`` authenticates the caller for the resolved call, ``decode()`` returns the body; both
    raise :class:`~workerhub.errors.WorkerhubError` to refuse. ``failure`` is an error the transport found
    before the call could be read (a body too large, a frame that is not a request): it is answered as is.
    """
    call_id = call_id or new_call_id()
    name, version = path.strip("/"), DEFAULT_VERSION
    try:
        if failure is not None:
            raise failure
        name, version = _resolve(path, hub.settings.max_api_version)
        identity = identify(name)
        body = decode()
        data = await dispatch(hub, name, body, CallContext(identity=identity, ip=ip), version)
        return 200, name, envelope(name, version, call_id, trx, data)
    except WorkerhubError as exc:
        if isinstance(exc, EndpointNotFound):
            name, version = exc.name, exc.version
        status, reply = error_envelope(name, version, call_id, trx, exc)
    except Exception as exc:
        log.exception("unhandled error in %s", name)
        status, reply = error_envelope(
            name, version, call_id, trx, ServerError(str(exc) or type(exc).__name__)
        )
    return status, name, reply
