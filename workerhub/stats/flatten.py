"""machine_stats → stat records, as clearml-server 2.4 flattens them (spec §4.2).

Each known field becomes records of ``(metric, variant, value)``: a scalar gives variant ``"total"``, a list
gives ``"0"``, ``"1"``, …. A falsy field (``0``, ``0.0``, ``[]``, ``null``) is skipped whole — upstream's
quirk Q2, so a genuine reading of 0 is not recorded unless ``record_zero`` is on. Unknown keys are dropped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..errors import ValidationError
from ..messages import Sample

__all__ = ["KNOWN_FIELDS", "LIST_FIELDS", "SCALAR_FIELDS", "flatten_machine_stats", "category_of"]

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
