"""The ClearML reply envelope: the one place an error becomes a wire reply (spec §0.2, wire §2)."""

from __future__ import annotations

from typing import Any

from ..errors import WorkerhubError

__all__ = ["ACTUAL_VERSION", "envelope", "error_envelope"]

ACTUAL_VERSION = "2.4"
# upstream registers get_count without min_version, so it answers as the decorator's default 1.0
_ACTUAL_VERSIONS = {"workers.get_count": "1.0"}


def _meta(
    name: str, version: str, call_id: str, trx: str | None, code: int, subcode: int, msg: str
) -> dict[str, Any]:
    return {
        "id": call_id,
        "trx": trx or call_id,
        "endpoint": {
            "name": name,
            "requested_version": version,
            "actual_version": _ACTUAL_VERSIONS.get(name, ACTUAL_VERSION),
        },
        "result_code": code,
        "result_subcode": subcode,
        "result_msg": msg,
        "error_stack": None,
        "error_data": {},
    }


def envelope(name: str, version: str, call_id: str, trx: str | None, data: dict[str, Any]) -> dict[str, Any]:
    """A success reply: HTTP 200, ``data`` as given (null fields already omitted by the producer)."""
    return {"meta": _meta(name, version, call_id, trx, 200, 0, "OK"), "data": data}


def error_envelope(
    name: str, version: str, call_id: str, trx: str | None, error: WorkerhubError
) -> tuple[int, dict[str, Any]]:
    """``(HTTP status, reply)`` for ``error``; the status always equals ``result_code`` and data is ``{}``."""
    meta = _meta(name, version, call_id, trx, error.code, error.subcode, error.message)
    return error.code, {"meta": meta, "data": {}}
