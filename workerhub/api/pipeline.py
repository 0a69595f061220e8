"""One call, whatever the transport: resolve the name, authenticate, decode the body, dispatch, envelope.

HTTP (:mod:`workerhub.api.http`) and the msgpack stream (:mod:`workerhub.stream.server`) both run every call
through :func:`run_call`; they differ only in how bytes become a path, credentials and a body, and in how
the reply goes back. So the order of the checks (a bad path before a bad token, a bad token before a bad
body, as upstream), the error mapping and the envelope are the same on both by construction.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from ..actors import Hub
from ..errors import EndpointNotFound, ServerError, WorkerhubError
from ..messages import Identity
from .endpoints import DEFAULT_VERSION, CallContext, dispatch, resolve
from .envelope import envelope, error_envelope

__all__ = ["run_call"]

log = logging.getLogger(__name__)


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
    call_id = call_id or uuid.uuid4().hex
    name, version = path.strip("/"), DEFAULT_VERSION
    try:
        if failure is not None:
            raise failure
        name, version = resolve("/" + path, hub.settings.max_api_version)
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
