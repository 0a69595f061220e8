"""Every error workerhub answers with, and its ClearML wire code.

This module is the one table that maps failures to ``(HTTP status, result_subcode)``: each class carries
its code, and :func:`workerhub.api.envelope.error_envelope` is the one place that turns an instance into a
reply. Messages follow clearml-server's format: ``<base>[ (<extra>)][: k1=v1, k2=v2]``, e.g.
``worker is not registered: worker=w1``.

Raise these from any layer; code that catches them should only ever want the subclass it can handle.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "find_error",
    "WorkerhubError",
    "BadRequest",
    "InvalidVersion",
    "ValidationError",
    "FieldsValueError",
    "InvalidWorkerId",
    "WorkerRegistrationFailed",
    "WorkerNotRegistered",
    "WorkerStatsNotFound",
    "Unauthorized",
    "BadAuthType",
    "NoCredentials",
    "BadCredentials",
    "InvalidCredentials",
    "InvalidToken",
    "Forbidden",
    "EndpointNotFound",
    "PayloadTooLarge",
    "UnsupportedMediaType",
    "DataError",
    "ServerError",
    "ServiceUnavailable",
    "MethodNotAllowed",
]


def _render(value: Any) -> str:
    if isinstance(value, (list, tuple, set, frozenset)):
        return "(" + ", ".join(str(v) for v in value) + ")"
    return str(value)


class WorkerhubError(Exception):
    """Base of every error that reaches a client as a ClearML envelope.

    ``extra`` is appended in parentheses, keyword ``details`` as ``k=v`` pairs, as upstream does.
    """

    code: ClassVar[int] = 500
    subcode: ClassVar[int] = 0
    base: ClassVar[str] = "server error"

    def __init__(self, extra: str | None = None, **details: Any) -> None:
        self.extra = extra
        self.details = details
        super().__init__(self.message)

    @property
    def message(self) -> str:
        msg = self.base
        if self.extra:
            msg += f" ({self.extra})"
        if self.details:
            msg += ": " + ", ".join(f"{k}={_render(v)}" for k, v in self.details.items())
        return msg


# --- 400: the caller's request is wrong; retrying it unchanged will fail again -------------------------


class BadRequest(WorkerhubError):
    """Malformed request: a body that does not decode, or a path that is not ``service.action``."""

    code, subcode, base = 400, 0, "bad request"


class InvalidVersion(WorkerhubError):
    """The ``/vX.Y/`` path segment is not a version number."""

    code, subcode, base = 400, 2, "request path has invalid version"


class ValidationError(WorkerhubError):
    """A required field is missing or a field has the wrong type or an out-of-range value."""

    code, subcode, base = 400, 12, "validation error"


class FieldsValueError(WorkerhubError):
    """Field values are individually valid but inconsistent (``from_date >= to_date``)."""

    code, subcode, base = 400, 16, "invalid value for fields"


class InvalidWorkerId(WorkerhubError):
    """status_report for an unknown worker while auto-registration is off."""

    code, subcode, base = 400, 1001, "invalid worker id"


class WorkerRegistrationFailed(WorkerhubError):
    """register with a timeout that is zero, null or negative."""

    code, subcode, base = 400, 1002, "worker registration failed"


class WorkerNotRegistered(WorkerhubError):
    """unregister of a worker that is not (or no longer) registered."""

    code, subcode, base = 400, 1004, "worker is not registered"


class WorkerStatsNotFound(WorkerhubError):
    """get_metric_keys found no statistics for the selected workers."""

    code, subcode, base = 400, 1005, "worker stats not found"


# --- 401/403: who is calling; the clients re-login once on 401 ----------------------------------------


class Unauthorized(WorkerhubError):
    """Base of the authentication failures (401)."""

    code, subcode, base = 401, 0, "unauthorized"


class BadAuthType(Unauthorized):
    """Authorization header with a scheme other than Basic or Bearer."""

    subcode, base = 10, "unauthorized (bad authentication header type)"


class NoCredentials(Unauthorized):
    """No Authorization header on a call that needs one."""

    subcode, base = 20, "unauthorized (missing credentials)"


class BadCredentials(Unauthorized):
    """Basic credentials that do not decode to ``key:secret``."""

    subcode, base = 21, "unauthorized (malformed credentials)"


class InvalidCredentials(Unauthorized):
    """Basic credentials with an unknown key or a wrong secret."""

    subcode, base = 22, "unauthorized (invalid credentials)"


class InvalidToken(Unauthorized):
    """A Bearer token that does not decode, has a bad signature or has expired: log in again."""

    subcode, base = 30, "invalid token"


class Forbidden(WorkerhubError):
    """The call is understood but not allowed in this server's mode (e.g. clock control outside testing)."""

    code, subcode, base = 403, 0, "forbidden"


# --- other request-level errors ------------------------------------------------------------------------


class EndpointNotFound(WorkerhubError):
    """No endpoint of that name, or the requested version is below the endpoint's minimum (2.4)."""

    code, subcode, base = 404, 0, "Unable to find endpoint"

    def __init__(self, name: str, version: str) -> None:
        self.name, self.version = name, version
        super().__init__()

    @property
    def message(self) -> str:
        return f"Unable to find endpoint for name {self.name} and version {self.version}"


class PayloadTooLarge(WorkerhubError):
    """The request body is larger than the server accepts."""

    code, subcode, base = 413, 0, "request body too large"


class UnsupportedMediaType(WorkerhubError):
    """A body in a content type or encoding the server does not decode."""

    code, subcode, base = 415, 0, "unsupported media type"


# --- 500: the server failed; the request may be retried -----------------------------------------------


class DataError(WorkerhubError):
    """Storage failed (e.g. the journal could not be written): the request was not applied."""

    code, subcode, base = 500, 100, "general data error"


class ServerError(WorkerhubError):
    """An unexpected failure; the message is the exception text."""

    code, subcode, base = 500, 0, "server error"


class ServiceUnavailable(WorkerhubError):
    """503: the server cannot take the call now, for a reason that passes by itself within seconds: the
    stream transport is at a capacity limit (connections, buffered bytes; the connection is closed), or the
    server is starting and its saved state is still loading. ClearML clients retry it. A limit on stored
    state (workers, histories, memory) is a 400 instead, since retrying it cannot succeed.
    """

    code, subcode, base = 503, 0, "service unavailable"


class MethodNotAllowed(WorkerhubError):
    """An HTTP method other than GET, POST or PUT (and OPTIONS) on a call path."""

    code, subcode, base = 405, 0, "method not allowed"


def find_error(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    """The first ``kind`` inside ``exc``, looking through exception groups (trio nurseries wrap errors).

    >>> find_error(ExceptionGroup("g", [KeyError("k"), ValueError("v")]), ValueError)
    ValueError('v')
    """
    if isinstance(exc, kind):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = find_error(inner, kind)
            if found is not None:
                return found
    return None
