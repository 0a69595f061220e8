"""Request bodies → validated messages, with clearml-server 2.4's exact typing rules (spec §0.4).

Two regimes, as upstream has them:

* register, unregister, status_report, get_all are checked by jsonmodels: integers are *cast* with
  ``int()`` (``2.9`` → 2, ``"1700000000000"`` accepted, ``"abc"`` refused), ``null`` means "not given".
* get_metric_keys, get_stats, get_activity_report are checked against the JSON schema first: JSON types
  are strict (a string is never a number, ``2.5`` is not an integer), nulls are dropped before checking.

Unknown fields are ignored everywhere (the SDK adds ``method``). Every failure is 400/12 naming the field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from enum import Enum
from typing import Any, cast

from ..errors import ValidationError
from ..messages import (
    STAT_KEYS,
    ActivityQuery,
    Aggregation,
    RegisterRequest,
    StatsItem,
    StatsQuery,
    StatusReport,
    WorkerFilter,
)
from ..stats.flatten import DEFAULT_MAX_VARIANTS, flatten_report

__all__ = [
    "parse_register",
    "parse_unregister",
    "parse_status_report",
    "parse_last_seen",
    "parse_worker_ids",
    "parse_stats_query",
    "parse_activity_query",
    "parse_worker_filter",
    "parse_count_last_seen",
]

_MISSING: Any = object()
_AGGREGATIONS = ("avg", "min", "max")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
# Times are int64 ms inside and dates go through Python's datetime on the way out: accept what both carry,
# the epoch to the last millisecond of year 9999 (as ES's default date range does up to its year 9999 too).
MAX_TIMESTAMP_MS = 253_402_300_799_999
_MAX_SECONDS = MAX_TIMESTAMP_MS / 1000
_MAX_INTERVAL = MAX_TIMESTAMP_MS // 1000 + 1


def _invalid(field: str, problem: str) -> ValidationError:
    return ValidationError(f"{field} {problem}", field=field)


# --- jsonmodels-style fields ------------------------------------------------------------------------------


def _string(body: Mapping[str, Any], name: str, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise _invalid(name, "is required")
        return None
    if not isinstance(value, str):
        raise _invalid(name, f"must be a string, not {_type(value)}")
    return value


def _cast_int(body: Mapping[str, Any], name: str, default: Any = None, *, required: bool = False) -> Any:
    value = body.get(name, _MISSING)
    if value is _MISSING or (value is None and required):
        if required:
            raise _invalid(name, "is required")
        return default
    if value is None:
        return None
    if isinstance(value, (int, float, str)):
        try:
            number = int(value)
        except (ValueError, OverflowError):
            pass
        else:
            # Beyond 64 bits a value cannot be stored (timestamps are int64 ms) nor sent back as JSON.
            if not _INT64_MIN <= number <= _INT64_MAX:
                raise _invalid(name, f"must fit in 64 bits, not {_repr(value)}")
            return number
    raise _invalid(name, f"must be an integer, not {_repr(value)}")


def _strings(body: Mapping[str, Any], name: str) -> tuple[str, ...] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, (list, tuple)):
        raise _invalid(name, f"must be a list of strings, not {_type(value)}")
    for item in value:
        if not isinstance(item, str):
            raise _invalid(name, f"must be a list of strings, not a list holding {_type(item)}")
    return tuple(value)


def _object(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise ValidationError("the request body must be an object", field="body")
    return body


def parse_register(body: Any, *, default_timeout: int | None = None) -> RegisterRequest:
    """``default_timeout`` (API >= 2.32): what an absent, ``0`` or ``null`` timeout means; ``None``: the
    2.4 rules (absent = 600, ``0``/``null`` refused by the hub with 400/1002)."""
    body = _object(body)
    timeout = _cast_int(body, "timeout", 600)
    if default_timeout is not None and ("timeout" not in body or not timeout):  # absent, 0 or null
        timeout = default_timeout
    _resources(body)
    return RegisterRequest(
        worker=_string(body, "worker", required=True),  # type: ignore[arg-type]
        timeout=timeout,
        queues=_strings(body, "queues") or (),
        tags=_strings(body, "tags"),
        system_tags=_strings(body, "system_tags"),
    )


def _resources(body: Mapping[str, Any]) -> None:
    """register ``resources`` (API 2.34): ``{cpu_usage, gpu_usage}`` numbers, checked and not kept
    (upstream writes them to queue documents, which workerhub does not have)."""
    value = body.get("resources")
    if value is None:
        return
    if not isinstance(value, Mapping):
        raise _invalid("resources", f"must be an object, not {_type(value)}")
    for name in ("cpu_usage", "gpu_usage"):
        item = value.get(name)
        if item is not None and (isinstance(item, bool) or not isinstance(item, (int, float))):
            raise _invalid(f"resources.{name}", f"must be a number, not {_repr(item)}")


def parse_unregister(body: Any) -> str:
    return _string(_object(body), "worker", required=True)  # type: ignore[return-value]


def parse_status_report(
    body: Any, *, record_zero: bool = False, max_variants: int = DEFAULT_MAX_VARIANTS
) -> StatusReport:
    if type(body) is dict:
        report = _plain_status_report(body, record_zero, max_variants)
        if report is not None:
            return report
    body = _object(body)
    timestamp = _cast_int(body, "timestamp", required=True)
    if not 0 <= timestamp <= MAX_TIMESTAMP_MS:
        problem = f"must be epoch ms from 0 to {MAX_TIMESTAMP_MS} (year 9999), not {_repr(timestamp)}"
        raise _invalid("timestamp", problem)
    worker = _string(body, "worker", required=True)
    task, queue, queues = _string(body, "task"), _string(body, "queue"), _strings(body, "queues")
    samples, shape, values = flatten_report(
        body.get("machine_stats"), record_zero=record_zero, max_variants=max_variants
    )
    return StatusReport(
        worker=worker,  # type: ignore[arg-type]
        timestamp=timestamp,
        task=task,
        queue=queue,
        queues=queues,
        samples=samples,
        tags=_strings(body, "tags"),
        system_tags=_strings(body, "system_tags"),
        shape=shape,
        values=values,
    )


def _plain_status_report(body: dict[str, Any], record_zero: bool, max_variants: int) -> StatusReport | None:
    """The report an agent sends (an int timestamp in range, plain strings, lists of strings or nulls),
    parsed with no per-field calls; None for anything else, which :func:`parse_status_report`'s general
    path then judges (and refuses) field by field, in its order. Same result either way
    (tests/property/test_flatten_fast.py)."""
    get = body.get
    timestamp, worker, task, queue = get("timestamp"), get("worker"), get("task"), get("queue")
    if (
        type(timestamp) is not int
        or not 0 <= timestamp <= MAX_TIMESTAMP_MS
        or type(worker) is not str
        or (task is not None and type(task) is not str)
        or (queue is not None and type(queue) is not str)
    ):
        return None
    queues, tags, system_tags = get("queues"), get("tags"), get("system_tags")  # agents send nulls here
    if queues is not None and (queues := _plain_strings(queues)) is _NOT_PLAIN:
        return None
    # machine_stats comes before tags in the general path's order, so its error is the one to raise here
    samples, shape, values = flatten_report(get("machine_stats"), record_zero, max_variants)
    if tags is not None and (tags := _plain_strings(tags)) is _NOT_PLAIN:
        return None
    if system_tags is not None and (system_tags := _plain_strings(system_tags)) is _NOT_PLAIN:
        return None
    return StatusReport(worker, timestamp, task, queue, queues, samples, tags, system_tags, shape, values)


class _NotPlain(Enum):
    NOT_PLAIN = 0


_NOT_PLAIN = _NotPlain.NOT_PLAIN


def _plain_strings(value: Any) -> tuple[str, ...] | None | _NotPlain:
    """A null or a list of plain strings as :func:`_strings` returns it; ``_NOT_PLAIN`` for anything else."""
    if value is None:
        return None
    if type(value) is not list:
        return _NOT_PLAIN
    for item in value:
        if type(item) is not str:
            return _NOT_PLAIN
    return tuple(value)


def parse_last_seen(body: Any) -> int | None:
    last_seen: int | None = _cast_int(_object(body), "last_seen", 3600)
    return last_seen


def parse_count_last_seen(body: Any) -> int | None:
    """workers.get_count's ``last_seen``: default 0 (every live worker), unlike get_all's 3600."""
    last_seen: int | None = _cast_int(_object(body), "last_seen", 0)
    return last_seen


def _tag_filter(body: Mapping[str, Any], name: str) -> tuple[str, ...] | None:
    values = _strings(body, name)
    for value in values or ():
        # upstream fails with a 500 on these (an IndexError on value[0]); a filter on no tag means nothing
        if value in ("", "-"):
            raise _invalid(name, f"must not hold an empty tag ({value!r})")
    return values


def parse_worker_filter(body: Any) -> WorkerFilter:
    """get_all / get_count ``tags``, ``system_tags`` (``-`` prefix excludes) and ``worker_pattern``."""
    body = _object(body)
    return WorkerFilter(
        tags=_tag_filter(body, "tags"),
        system_tags=_tag_filter(body, "system_tags"),
        worker_pattern=_string(body, "worker_pattern"),
    )


# --- JSON-schema-style fields -----------------------------------------------------------------------------


def _schema_number(body: Mapping[str, Any], name: str) -> float:
    value = body.get(name)
    if value is None:
        raise _invalid(name, "is required")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _invalid(name, f"must be a number, not {_repr(value)}")
    if value < 0:
        raise _invalid(name, f"must be at least 0, not {value}")
    if value > _MAX_SECONDS:
        raise _invalid(name, f"must be epoch seconds up to {_MAX_SECONDS} (year 9999), not {_repr(value)}")
    return value


def _schema_interval(body: Mapping[str, Any]) -> int:
    value = body.get("interval")
    if value is None:
        raise _invalid("interval", "is required")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
        raise _invalid("interval", f"must be an integer, not {_repr(value)}")
    if value < 1:
        raise _invalid("interval", f"must be at least 1, not {value}")
    if value > _MAX_INTERVAL:  # one bucket then spans every date accepted; int64 ms arithmetic stays exact
        raise _invalid("interval", f"must be at most {_MAX_INTERVAL} seconds, not {_repr(value)}")
    return int(value)


def parse_worker_ids(body: Any) -> tuple[str, ...]:
    return _strings(_object(body), "worker_ids") or ()


def _stats_item(raw: Any, index: int, head: bool = False) -> StatsItem:
    where = f"items[{index}]"
    if not isinstance(raw, Mapping):
        raise _invalid(where, f"must be an object, not {_type(raw)}")
    key = raw.get("key")
    if key is None:
        raise _invalid(f"{where}.key", "is required")
    if not isinstance(key, str):
        raise _invalid(f"{where}.key", f"must be a string, not {_type(key)}")
    if head:
        return _head_stats_item(raw, key, where)
    # The SDK sends the schema's `category`; upstream's model reads `aggregation`. Accept both,
    # `aggregation` winning (spec wire §1).
    name = "aggregation" if raw.get("aggregation") is not None else "category"
    agg = raw.get(name)
    if agg is None:
        agg = "avg"
    elif agg not in _AGGREGATIONS:
        raise _invalid(f"{where}.{name}", f"must be one of avg, min, max, not {_repr(agg)}")
    return StatsItem(key, agg)  # type: ignore[arg-type]  # checked against _AGGREGATIONS above


def _head_stats_item(raw: Mapping[str, Any], key: str, where: str) -> StatsItem:
    # API 2.32: the key is an enum; `category` (the schema's name, sent by the SDK) is ignored; a null
    # aggregation, a 500 upstream, is refused like any other bad value.
    if key not in STAT_KEYS:
        raise _invalid(f"{where}.key", f"must be one of {', '.join(STAT_KEYS)}, not {_repr(key)}")
    agg = raw.get("aggregation", "avg")
    if agg not in _AGGREGATIONS:
        raise _invalid(f"{where}.aggregation", f"must be one of avg, min, max, not {_repr(agg)}")
    return StatsItem(key, cast(Aggregation, agg))


def _schema_bool(body: Mapping[str, Any], name: str) -> bool:
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise _invalid(name, f"must be a boolean, not {_repr(value)}")
    return bool(value)


def parse_stats_query(body: Any, *, head: bool = False) -> StatsQuery:
    """``head`` (API >= 2.32): the key enum, ``aggregation`` only, and ``split_by_resource``."""
    body = _object(body)
    from_date = _schema_number(body, "from_date")
    to_date = _schema_number(body, "to_date")
    interval = _schema_interval(body)
    items = body.get("items")
    if items is None:
        raise _invalid("items", "is required")
    if not isinstance(items, (list, tuple)):
        raise _invalid("items", f"must be a list, not {_type(items)}")
    if not items:
        raise _invalid("items", "must hold at least one item")
    split = body.get("split_by_variant")
    if split is not None and not isinstance(split, bool):
        raise _invalid("split_by_variant", f"must be a boolean, not {_repr(split)}")
    return StatsQuery(
        from_date=from_date,
        to_date=to_date,
        interval=interval,
        items=tuple(_stats_item(raw, i, head) for i, raw in enumerate(items)),
        worker_ids=parse_worker_ids(body),
        split_by_variant=bool(split),
        split_by_resource=_schema_bool(body, "split_by_resource") if head else False,
    )


def parse_activity_query(body: Any) -> ActivityQuery:
    body = _object(body)
    return ActivityQuery(
        from_date=_schema_number(body, "from_date"),
        to_date=_schema_number(body, "to_date"),
        interval=_schema_interval(body),
    )


def _type(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def _repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
