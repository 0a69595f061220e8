"""machine_stats → stat records, as clearml-server 2.4 flattens them (spec §4.2).

Each known field becomes records of ``(metric, variant, value)``: a scalar gives variant ``"total"``, a list
gives ``"0"``, ``"1"``, …. A falsy field (``0``, ``0.0``, ``[]``, ``null``) is skipped whole — upstream's
quirk Q2, so a genuine reading of 0 is not recorded unless ``record_zero`` is on. Unknown keys are dropped.

:func:`flatten_report` is the ingest path: besides the records it gives their :class:`~.series.SeriesShape`
(interned) and their values in that order, which the history stores with one cached column look-up. An
agent sends the same keys with the same list lengths every time, so the *template* of its last report
(per key: its list length, a scalar, or ignored) is remembered by the dict's key order; a report that fits
it is only validated value by value, with no per-record work. Anything else (a new key order, a list of
another length, a null, a bool, a numpy float, a value out of range) takes the general path, which decides
everything, raises the errors, and records the template for next time. Both give the same result
(tests/property/test_flatten_fast.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..errors import ValidationError
from ..messages import Sample
from .series import SeriesShape, shape_of

__all__ = [
    "KNOWN_FIELDS",
    "LIST_FIELDS",
    "SCALAR_FIELDS",
    "Flat",
    "category_of",
    "flatten_machine_stats",
    "flatten_report",
]

LIST_FIELDS = frozenset(
    {"cpu_usage", "cpu_temperature", "gpu_usage", "gpu_temperature", "gpu_memory_free", "gpu_memory_used"}
)
SCALAR_FIELDS = frozenset(
    {
        "memory_used",
        "memory_free",
        "network_tx",
        "network_rx",
        "disk_free_home",
        "disk_free_temp",
        "disk_read",
        "disk_write",
    }
)
KNOWN_FIELDS = LIST_FIELDS | SCALAR_FIELDS
_INDEX = tuple(str(i) for i in range(256))  # list variants "0", "1", ... without a str() per value
_FLOAT32_MAX = 3.4028234663852886e38


def category_of(metric: str) -> str:
    """The category ClearML files a metric under: the text before the first ``_``."""
    return metric.split("_", 1)[0]


def _number(value: Any, field: str) -> float:
    # bool is accepted as a number, as upstream's FloatField does (spec §0.4).
    if isinstance(value, (int, float)):
        try:
            f = float(value)
        except OverflowError:  # an int beyond float range: not a finite number either
            f = math.inf
        # Upstream stores values in a 32-bit ES float, which refuses anything beyond its range; holding
        # to that range also keeps every sum, and so every avg, finite (JSON has no infinity).
        if math.isfinite(f) and abs(f) <= _FLOAT32_MAX:
            return f
        raise ValidationError(
            f"machine_stats.{field} must be a finite number within the float32 range, not {value!r}",
            field=f"machine_stats.{field}",
        )
    raise ValidationError(
        f"machine_stats.{field} must be a number, not {type(value).__name__}", field=f"machine_stats.{field}"
    )


DEFAULT_MAX_VARIANTS = 1024

Flat = tuple[tuple[Sample, ...], SeriesShape, list[float]]
"""``(records, their shape, their values in the shape's order)``."""

_NO_SHAPE = shape_of(())
_MAX_TEMPLATE_KEYS = 64
"""A machine_stats with more keys gets no template (agents send 14 known ones): a template is kept per key
order, and a client must not grow the table by sending huge objects."""
_TEMPLATE_SERIES = 1 << 16
"""Series keys, summed over every template's shapes, the templates may hold (a few MB at most); past it they
are all dropped and learnt again, so a client sending ever new key orders or zero patterns cannot grow them."""
_MAX_TEMPLATE_MASKS = 8
"""Shapes kept per template for scalars left out as zero (an agent idle on its disk or network: a few)."""


class _Template:
    """How a report with this key order is shaped, to check the next one against.

    ``kinds``, one per key in order: ``n >= 1``, a list field holding n entries; ``0``, an unknown key
    (ignored, whatever its value); ``-bit``, a scalar field (``bit`` a power of two naming it in a mask of
    the scalars left out as zero). ``full``: the shape with every scalar; ``shapes``: per mask.
    """

    __slots__ = ("full", "kinds", "longest", "scalars", "shapes")

    def __init__(self, keys: tuple[str, ...], kinds: tuple[int, ...]) -> None:
        self.kinds = kinds
        self.longest = max(kinds, default=0)
        self.scalars = tuple((-k, f) for k, f in zip(kinds, keys) if k < 0)
        series: list[tuple[str, str]] = []
        for field, kind in zip(keys, kinds):
            if kind > 0:
                series += zip([field] * kind, _INDEX[:kind])
            elif kind < 0:
                series.append((field, "total"))
        self.full = shape_of(tuple(series))
        self.shapes: dict[int, SeriesShape] = {}
        _held[0] += len(self.full)

    def shape(self, mask: int) -> SeriesShape:
        """The shape without the scalars named in ``mask``."""
        shape = self.shapes.get(mask)
        if shape is None:
            zero = {f for bit, f in self.scalars if mask & bit}
            shape = shape_of(tuple(k for k in self.full.keys if k[0] not in zero))
            if len(self.shapes) < _MAX_TEMPLATE_MASKS and _held[0] + len(shape) <= _TEMPLATE_SERIES:
                self.shapes[mask] = shape
                _held[0] += len(shape)
        return shape


# By key order. A template does not depend on record_zero (a setting: two hubs of one process may
# differ): that decides per report which zero scalars are left out.
_templates: dict[tuple[str, ...], _Template] = {}
_held = [0]  # series keys held by the templates' shapes


def flatten_report(stats: Any, record_zero: bool = False, max_variants: int = DEFAULT_MAX_VARIANTS) -> Flat:
    """As :func:`flatten_machine_stats`, returning ``(records, shape, values)`` (:data:`Flat`).

    >>> records, shape, values = flatten_report({"cpu_usage": [10.0, 0.0], "memory_used": 0})
    >>> shape.keys, values
    ((('cpu_usage', '0'), ('cpu_usage', '1')), [10.0, 0.0])
    """
    if type(stats) is dict:
        template = _templates.get(tuple(stats))
        if template is not None and template.longest <= max_variants:
            flat = _fitted(stats, template, record_zero)
            if flat is not None:
                return flat
    return _general(stats, record_zero, max_variants)


def _fitted(stats: dict[str, Any], template: _Template, record_zero: bool) -> Flat | None:
    """The report flattened along ``template``; None when it does not fit it, or holds anything but plain
    in-range floats and ints: then the general path decides, and raises what it must."""
    values: list[float] = []
    mask = 0
    hi = _FLOAT32_MAX
    lo = -hi
    for value, kind in zip(stats.values(), template.kinds):
        if kind > 0:
            if type(value) is not list or len(value) != kind:
                return None
            for v in value:
                # one chained comparison is false for nan, +-inf and anything beyond float32's range
                if type(v) is not float or not lo <= v <= hi:
                    break
            else:
                values += value
                continue
            for v in value:
                t = type(v)
                # int/float comparisons are exact in Python: a huge int is out of range, never an overflow
                if (t is float or t is int) and lo <= v <= hi:
                    values.append(float(v))
                else:
                    return None
        elif kind < 0:
            t = type(value)
            if (t is not float and t is not int) or not lo <= value <= hi:
                return None
            if value or record_zero:
                values.append(float(value))
            else:
                mask |= -kind
    shape = template.shape(mask) if mask else template.full
    return tuple(zip(shape.metrics, shape.variants, values)), shape, values


def _general(stats: Any, record_zero: bool, max_variants: int) -> Flat:
    records = flatten_machine_stats(stats, record_zero=record_zero, max_variants=max_variants)
    shape = shape_of(tuple((m, v) for m, v, _x in records)) if records else _NO_SHAPE
    if type(stats) is dict and len(stats) <= _MAX_TEMPLATE_KEYS:
        _learn(stats)
    return records, shape, [x for _m, _v, x in records]


def _learn(stats: dict[str, Any]) -> None:
    """Remember the template of a report the general path accepted, if it has one: every known field a
    non-empty list (of at most 256 entries) or a number; nulls, empty lists and other types have none."""
    kinds: list[int] = []
    bit = 1
    for field, value in stats.items():
        if field in LIST_FIELDS:
            if type(value) is not list or not 0 < len(value) <= len(_INDEX):
                return
            kinds.append(len(value))
        elif field in SCALAR_FIELDS:
            if type(value) is not float and type(value) is not int:
                return
            kinds.append(-bit)
            bit <<= 1
        else:
            kinds.append(0)
    keys = tuple(stats)
    template = _templates.get(keys)
    if template is None or template.kinds != tuple(kinds):
        if _held[0] + sum(k for k in kinds if k > 0) + len(kinds) > _TEMPLATE_SERIES:
            _templates.clear()
            _held[0] = 0
        _templates[keys] = _Template(keys, tuple(kinds))


def flatten_machine_stats(
    stats: Any, *, record_zero: bool = False, max_variants: int = DEFAULT_MAX_VARIANTS
) -> tuple[Sample, ...]:
    """Validate ``machine_stats`` and flatten it to records; raises ValidationError naming the bad field.

    A list longer than ``max_variants`` is refused: each entry becomes a series the worker keeps for its
    whole retention, so the list length is what bounds a worker's memory.

    >>> flatten_machine_stats({"cpu_usage": [10, 0], "memory_used": 0, "gpu_fraction": 1})
    (('cpu_usage', '0', 10.0), ('cpu_usage', '1', 0.0))
    """
    if stats is None:
        return ()
    if not isinstance(stats, Mapping):
        raise ValidationError("machine_stats must be an object", field="machine_stats")
    out: list[Sample] = []
    for field, value in stats.items():
        if field in LIST_FIELDS:
            if value is None:
                continue
            if not isinstance(value, (list, tuple)):
                raise ValidationError(
                    f"machine_stats.{field} must be a list of numbers", field=f"machine_stats.{field}"
                )
            if len(value) > max_variants:
                raise ValidationError(
                    f"machine_stats.{field} has {len(value)} entries, the limit is {max_variants} (max_variants)",
                    field=f"machine_stats.{field}",
                )
            index = _INDEX if len(value) <= len(_INDEX) else [str(i) for i in range(len(value))]
            for i, v in enumerate(value):
                # fast path for the usual plain float: one chained comparison is false for nan, for
                # +-inf and for anything beyond the float32 range, which all go to _number to be refused
                ok = type(v) is float and -_FLOAT32_MAX <= v <= _FLOAT32_MAX
                out.append((field, index[i], v if ok else _number(v, field)))
        elif field in SCALAR_FIELDS:
            if value is None:
                continue
            number = _number(value, field)
            if number or record_zero:
                out.append((field, "total", number))
    return tuple(out)
