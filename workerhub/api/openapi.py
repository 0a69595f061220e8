"""``GET /openapi.json``: an OpenAPI 3.1 document generated from the tables the server dispatches with.

Paths are the calls of :data:`~.endpoints.ENDPOINTS` (each with its :data:`~.schemas.SCHEMAS` entry), the
reply envelope around each call's ``data``, the error envelope with every status the error hierarchy
(:mod:`workerhub.errors`) can answer, and the operations paths (/livez, /readyz, /metrics). Nothing is kept
by hand: a call added to the table without a schema fails tests/test_openapi.py.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

from .. import errors
from ..config import Settings
from .codec import JSON, MSGPACK
from .endpoints import ENDPOINTS
from .envelope import ACTUAL_VERSION
from .schemas import SCHEMAS

__all__ = ["OPENAPI_VERSION", "openapi_document"]

OPENAPI_VERSION = "3.1.0"

_NO_AUTH = frozenset({"debug.ping"})  # answered without credentials in every mode
_LOGIN = "auth.login"

_DESCRIPTION = """\
The ClearML `workers` API as served by workerhub (API 2.4 to 2.34), plus `auth.login` and `debug.*`.

Every call is `POST /<service>.<action>` with a JSON (or msgpack: `application/vnd.msgpack`) body; GET and PUT
work too, a `/vX.Y/` prefix selects the API version, query parameters are merged into the body, and an empty
body is `{}`. Every reply is an envelope `{meta, data}` whose HTTP status equals `meta.result_code`; errors
carry `data: {}` and a message in `meta.result_msg` naming the field. The same calls are served over the
msgpack stream (docs/stream-protocol.md).
"""


def _error_statuses() -> list[int]:
    seen: set[int] = set()
    todo: list[type[errors.WorkerhubError]] = [errors.WorkerhubError]
    while todo:
        cls = todo.pop()
        seen.add(cls.code)
        todo.extend(cls.__subclasses__())
    return sorted(seen)


def _content(schema: dict[str, Any]) -> dict[str, Any]:
    return {JSON: {"schema": schema}, MSGPACK: {"schema": schema}}


def _meta() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["id", "trx", "endpoint", "result_code", "result_subcode", "result_msg"],
        "properties": {
            "id": {"type": "string"},
            "trx": {"type": "string"},
            "endpoint": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "requested_version": {"type": "string"},
                    "actual_version": {"type": "string"},
                },
            },
            "result_code": {"type": "integer", "description": "equals the HTTP status"},
            "result_subcode": {"type": "integer"},
            "result_msg": {"type": "string"},
            "error_stack": {"type": ["string", "null"]},
            "error_data": {"type": "object"},
        },
    }


def _reply(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["meta", "data"],
        "properties": {"meta": {"$ref": "#/components/schemas/Meta"}, "data": data},
    }


def _security(name: str, settings: Settings) -> list[dict[str, list[str]]]:
    if name in _NO_AUTH:
        return [{}]
    if name == _LOGIN:
        return [{"basic": []}] if settings.auth else [{}, {"basic": []}]
    schemes: list[dict[str, list[str]]] = [{"bearer": []}, {"basic": []}]
    return schemes if settings.auth else [{}, *schemes]


def _call(name: str, settings: Settings, statuses: list[int]) -> dict[str, Any]:
    call = SCHEMAS[name]
    responses: dict[str, Any] = {"200": {"description": "OK", "content": _content(_reply(call.response))}}
    for status in statuses:
        responses[str(status)] = {"$ref": "#/components/responses/Error"}
    return {
        "operationId": name.replace(".", "_"),
        "summary": call.summary,
        "tags": [name.split(".", 1)[0]],
        "requestBody": {"required": False, "content": _content(call.request)},
        "responses": responses,
        "security": _security(name, settings),
    }


def _text(description: str, statuses: tuple[str, ...] = ("200",)) -> dict[str, Any]:
    plain = {"text/plain": {"schema": {"type": "string"}}}
    return {
        "get": {
            "summary": description,
            "tags": ["operations"],
            "security": [{}],
            "responses": {status: {"description": description, "content": plain} for status in statuses},
        }
    }


def _version() -> str:
    try:
        return importlib.metadata.version("workerhub")
    except importlib.metadata.PackageNotFoundError:  # a source tree that was never installed
        return "0.0.0"


def openapi_document(settings: Settings) -> dict[str, Any]:
    """The document for a server running with ``settings`` (credentials mode changes the security)."""
    statuses = _error_statuses()
    paths: dict[str, Any] = {f"/{name}": {"post": _call(name, settings, statuses)} for name in ENDPOINTS}
    paths["/livez"] = _text("Liveness: 200 while the event loop answers")
    paths["/readyz"] = _text("Readiness: 200 once the state is loaded and persistence writable, else 503 and why",
                             ("200", "503"))
    if settings.metrics and settings.metrics_port is None:
        paths["/metrics"] = _text("Prometheus metrics, text format 0.0.4 (docs/operations.md)")
    paths["/openapi.json"] = {
        "get": {
            "summary": "This document",
            "tags": ["operations"],
            "security": [{}],
            "responses": {"200": {"description": "OpenAPI 3.1", "content": {JSON: {"schema": {"type": "object"}}}}},
        }
    }
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "workerhub",
            "version": _version(),
            "summary": f"ClearML workers API server (API {ACTUAL_VERSION}+)",
            "description": _DESCRIPTION,
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "paths": paths,
        "components": {
            "schemas": {
                "Meta": _meta(),
                "ErrorReply": _reply({"type": "object", "maxProperties": 0}),
            },
            "responses": {
                "Error": {
                    "description": "An error envelope: HTTP status = meta.result_code, data = {}",
                    "content": _content({"$ref": "#/components/schemas/ErrorReply"}),
                }
            },
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic", "description": "access key : secret key"},
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                           "description": "the token from auth.login"},
            },
        },
    }
