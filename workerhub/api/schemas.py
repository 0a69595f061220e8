"""Declarative JSON Schemas (2020-12, as OpenAPI 3.1 embeds them) of every call's request body and reply
``data``, keyed by call name like :data:`~workerhub.api.endpoints.ENDPOINTS`.

They document the wire (api-versions: the 2.4 seed plus the fields added up to 2.34) and feed
``/openapi.json`` (:mod:`.openapi`); the handlers' own parsing (:mod:`.parse`) stays what decides. So the
request schemas are what a client should send: unknown fields are allowed (upstream ignores them, the SDK
adds ``method``), and the reply schemas cover both dialects (2.4 and 2.32+ get_stats shapes) without
``additionalProperties: false``. tests/test_openapi.py checks that the keys match the endpoint table and
fuzzes the running server from the document.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["SCHEMAS", "STAT_KEYS", "CallSchema"]

Schema = dict[str, Any]


@dataclass(frozen=True, slots=True)
class CallSchema:
    """One call: a one-line summary, the request body's schema, the reply ``data``'s schema."""

    summary: str
    request: Schema
    response: Schema
    description: str = ""


STAT_KEYS = (
    "cpu_usage", "cpu_temperature", "memory_used", "memory_free", "gpu_usage", "gpu_temperature",
    "gpu_fraction", "gpu_memory_free", "gpu_memory_used", "network_tx", "network_rx",
    "disk_free_home", "disk_free_temp", "disk_read", "disk_write",
)
"""The stat keys of the 2.32 ``worker_stat_key`` enum (api-versions §2, 2.32)."""

_LIST_STATS = ("cpu_usage", "cpu_temperature", "gpu_usage", "gpu_temperature", "gpu_memory_free", "gpu_memory_used")
_SCALAR_STATS = (
    "memory_used", "memory_free", "network_tx", "network_rx", "disk_free_home", "disk_free_temp", "disk_read",
    "disk_write",
)


def _obj(properties: Schema, required: tuple[str, ...] = (), **extra: Any) -> Schema:
    out: Schema = {"type": "object", "properties": properties, **extra}
    if required:
        out["required"] = list(required)
    return out


def _str(description: str = "") -> Schema:
    return {"type": "string", **({"description": description} if description else {})}


def _strings(description: str) -> Schema:
    return {"type": "array", "items": {"type": "string"}, "description": description}


_INT = {"type": "integer"}
_NUM = {"type": "number"}
_NUMBERS = {"type": "array", "items": _NUM}
_EPOCH_S = {"type": "number", "minimum": 0, "description": "epoch seconds"}
_INTERVAL = {"type": "integer", "minimum": 1, "description": "bucket size in seconds"}
_EMPTY = _obj({}, maxProperties=0)

_TAGS = _strings("user tags of the worker (API 2.4+; replaced by every status_report)")
_SYSTEM_TAGS = _strings("system tags of the worker (API 2.22)")
_TAG_FILTER = _strings("only workers with any of these tags; a tag prefixed with '-' excludes (API 2.20)")
_SYSTEM_TAG_FILTER = _strings("the same filter on system tags (API 2.22)")
_PATTERN = _str("glob on the worker id: *, ?, [...], backslash escape (API 2.30)")

_MACHINE_STATS = _obj(
    {
        **{name: _NUMBERS for name in _LIST_STATS},
        **{name: _NUM for name in _SCALAR_STATS},
        "gpu_fraction": _NUM,
    },
    description="one sample per metric; list metrics have a value per core / GPU (variant 0, 1, ...)",
)

_ID = _obj({"id": _str(), "name": _str()})

_WORKER = _obj(
    {
        "id": _str(),
        "key": _str("worker_<company>_<user>_<id>"),
        "user": _ID,
        "company": _ID,
        "ip": _str(),
        "register_time": _str("ISO 8601, UTC"),
        "register_timeout": _INT,
        "last_activity_time": _str("ISO 8601, UTC"),
        "last_report_time": _str("ISO 8601, UTC"),
        "task": _obj({"id": _str(), "name": _str(), "running_time": _INT}),
        "queue": _obj({"id": _str(), "name": _str(), "display_name": _str()}),
        "queues": {"type": "array", "items": _obj({"id": _str(), "name": _str(), "display_name": _str()})},
        "tags": {"type": "array", "items": _str()},
        "system_tags": {"type": "array", "items": _str()},
    },
    required=("id",),
)

_STAT_ITEM = _obj(
    {
        "key": _str("a stat key (cpu_usage, gpu_usage, ...; at API 2.32+ one of the worker_stat_key enum)"),
        "aggregation": {"enum": ["avg", "min", "max"]},
        "category": {"enum": ["avg", "min", "max"], "description": "what the SDK sends for the aggregation"},
    },
    required=("key",),
)

_AGGREGATION_STATS = _obj(
    {
        "aggregation": {"enum": ["avg", "min", "max"]},
        "dates": {"type": "array", "items": _INT, "description": "API 2.32+: bucket starts, epoch ms"},
        "values": _NUMBERS,
        "resource_series": {
            "type": "array",
            "items": _obj({"name": _str(), "values": _NUMBERS}),
            "description": "API 2.32+ with split_by_resource: per GPU series",
        },
    }
)

_METRIC_STATS = _obj(
    {
        "metric": _str(),
        "variant": _str("with split_by_variant (API < 2.32)"),
        "dates": {"type": "array", "items": _INT, "description": "API < 2.32: bucket starts, epoch ms"},
        "stats": {"type": "array", "items": _AGGREGATION_STATS},
    }
)

_SERIES = _obj({"dates": {"type": "array", "items": _INT}, "counts": {"type": "array", "items": _INT}})

SCHEMAS: dict[str, CallSchema] = {
    "workers.register": CallSchema(
        "Register a worker (or replace its registration)",
        _obj(
            {
                "worker": _str("worker id"),
                "timeout": {"type": "integer", "description": "seconds without a report before it expires"},
                "queues": _strings("queue ids the worker listens to"),
                "tags": _TAGS,
                "system_tags": _SYSTEM_TAGS,
                "resources": _obj(
                    {"cpu_usage": _NUM, "gpu_usage": _NUM},
                    description="resources the worker uses (API 2.34): validated, not stored",
                ),
            },
            required=("worker",),
        ),
        _EMPTY,
    ),
    "workers.unregister": CallSchema(
        "Unregister a worker (its stats stay until retention drops them)",
        _obj({"worker": _str("worker id")}, required=("worker",)),
        _EMPTY,
    ),
    "workers.status_report": CallSchema(
        "Report a worker's status and machine stats; renews its registration",
        _obj(
            {
                "worker": _str("worker id"),
                "timestamp": {"type": "integer", "description": "epoch milliseconds of the sample"},
                "task": _str("id of the task running now"),
                "queue": _str("queue the task came from"),
                "queues": _strings("queue ids the worker listens to"),
                "machine_stats": _MACHINE_STATS,
                "tags": _TAGS,
                "system_tags": _SYSTEM_TAGS,
            },
            required=("worker", "timestamp"),
        ),
        _EMPTY,
    ),
    "workers.get_all": CallSchema(
        "Registered workers of the caller's company, sorted by id",
        _obj(
            {
                "last_seen": {"type": "integer", "default": 3600,
                              "description": "seconds; 0 lists every live worker"},
                "tags": _TAG_FILTER,
                "system_tags": _SYSTEM_TAG_FILTER,
                "worker_pattern": _PATTERN,
            }
        ),
        _obj({"workers": {"type": "array", "items": _WORKER}}, required=("workers",)),
    ),
    "workers.get_count": CallSchema(
        "How many workers get_all would list (API 2.26)",
        _obj(
            {
                "last_seen": {"type": "integer", "default": 0, "description": "seconds; 0 counts every live worker"},
                "tags": _TAG_FILTER,
                "system_tags": _SYSTEM_TAG_FILTER,
                "worker_pattern": _PATTERN,
            }
        ),
        _obj({"count": _INT}, required=("count",)),
    ),
    "workers.get_metric_keys": CallSchema(
        "Stat keys reported by the given workers (all when none), by category",
        _obj({"worker_ids": _strings("worker ids; empty or absent: every worker")}),
        _obj(
            {"categories": {"type": "array", "items": _obj({"name": _str(), "metric_keys": _strings("stat keys")})}},
            required=("categories",),
        ),
    ),
    "workers.get_stats": CallSchema(
        "Aggregated stats per worker, metric and interval bucket",
        _obj(
            {
                "from_date": _EPOCH_S,
                "to_date": _EPOCH_S,
                "interval": _INTERVAL,
                "items": {"type": "array", "items": _STAT_ITEM, "minItems": 1},
                "worker_ids": _strings("worker ids; empty or absent: every worker"),
                "split_by_variant": {"type": "boolean", "description": "API < 2.32: a series per core / GPU"},
                "split_by_resource": {"type": "boolean", "description": "API 2.32+: per GPU resource_series"},
            },
            required=("from_date", "to_date", "interval", "items"),
        ),
        _obj(
            {
                "workers": {
                    "type": "array",
                    "items": _obj({"worker": _str(), "metrics": {"type": "array", "items": _METRIC_STATS}}),
                }
            },
            required=("workers",),
        ),
    ),
    "workers.get_activity_report": CallSchema(
        "Workers reporting (total) and running a task (active) per interval bucket",
        _obj(
            {"from_date": _EPOCH_S, "to_date": _EPOCH_S, "interval": _INTERVAL},
            required=("from_date", "to_date", "interval"),
        ),
        _obj({"total": _SERIES, "active": _SERIES}, required=("total", "active")),
    ),
    "auth.login": CallSchema(
        "A token for the credentials in the Authorization header (Basic key:secret)",
        _obj({"expiration_sec": {"type": "number", "description": "token lifetime in seconds (max 30 days)"}}),
        _obj({"token": _str("a JWT to send as Authorization: Bearer")}, required=("token",)),
    ),
    "debug.ping": CallSchema("Is the server there?", _obj({}), _obj({"msg": _str()}, required=("msg",))),
    "debug.advance_clock": CallSchema(
        "Move the server's time forward (testing mode only, else 403)",
        _obj({"seconds": {"type": "number", "minimum": 0}}, required=("seconds",)),
        _EMPTY,
    ),
    "debug.reset": CallSchema(
        "Forget every worker and stat (testing mode only, else 403)", _obj({}), _EMPTY
    ),
}

