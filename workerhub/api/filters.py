"""get_all / get_count selection: tag filters and the ``worker_pattern`` glob (api-versions §4.1, §4.2).

Tags: within one field (``tags`` or ``system_tags``) a worker is kept when it has any of the included tags
(if there are any) and none of the excluded ones (``-tag``); the two fields must both hold. There are no
operators: ``__$all`` is a literal tag. Membership is the worker's current tags (decision 5: upstream's
stale Redis set members are not emulated).

``worker_pattern`` is a Redis-style glob (decision 6): ``*``, ``?`` (exactly one character), ``[...]`` with
ranges and ``^`` negation, ``\\`` escape, case-sensitive. Upstream matches it against the Redis key
``worker_<company>_<user>_<id>`` with ``worker_<company>_*_`` in front, so it matches the whole id or any
suffix of the id that starts right after a ``_`` (quirk V23); ``fix_quirks`` matches the whole id only.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

from ..actors.hub import Tagged
from ..errors import ValidationError
from ..messages import WorkerFilter

__all__ = ["compile_filter", "glob_to_regex"]


def _invalid_pattern(problem: str) -> ValidationError:
    return ValidationError(f"worker_pattern {problem}", field="worker_pattern")


def glob_to_regex(pattern: str) -> str:
    """The regular expression (no anchors) of a Redis glob; 400/12 naming worker_pattern if malformed."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "\\":
            if i + 1 == n:
                raise _invalid_pattern("ends with an unescaped backslash")
            i += 1
            out.append(re.escape(pattern[i]))
        elif c == "[":
            i, cls = _char_class(pattern, i + 1)
            out.append(cls)
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def _char_class(pattern: str, i: int) -> tuple[int, str]:
    """Parse ``[...]`` from just after the ``[``; returns the index of the ``]`` and the regex class."""
    n = len(pattern)
    negate = i < n and pattern[i] == "^"
    if negate:
        i += 1
    parts: list[str] = []
    while i < n and pattern[i] != "]":
        c = pattern[i]
        if c == "\\":
            if i + 1 == n:
                break
            i += 1
            c = pattern[i]
        if i + 2 < n and pattern[i + 1] == "-" and pattern[i + 2] != "]":
            end = pattern[i + 2]
            if end == "\\" and i + 3 < n:
                end, i = pattern[i + 3], i + 1
            lo, hi = sorted((c, end))  # Redis swaps a reversed range
            parts.append(f"{re.escape(lo)}-{re.escape(hi)}")
            i += 3
            continue
        parts.append(re.escape(c))
        i += 1
    if i >= n:
        raise _invalid_pattern(f"has an unclosed '[': {pattern!r}")
    if not parts:
        raise _invalid_pattern(f"has an empty character class: {pattern!r}")
    return i, "[" + ("^" if negate else "") + "".join(parts) + "]"


@lru_cache(maxsize=256)
def _pattern(pattern: str, whole_id: bool) -> re.Pattern[str]:
    body = glob_to_regex(pattern)
    return re.compile(body if whole_id else f"(?:.*_)?(?:{body})", re.DOTALL)


def _tag_test(values: tuple[str, ...]) -> Callable[[tuple[str, ...] | None], bool]:
    include = frozenset(v for v in values if not v.startswith("-"))
    exclude = frozenset(v[1:] for v in values if v.startswith("-"))

    def test(tags: tuple[str, ...] | None) -> bool:
        have = tags or ()
        if include and include.isdisjoint(have):
            return False
        return not (exclude and not exclude.isdisjoint(have))

    return test


def compile_filter(f: WorkerFilter, *, whole_id: bool = False) -> Tagged | None:
    """The predicate of ``f``, or ``None`` when it selects every worker. Raises 400/12 for a bad pattern."""
    if f.empty:
        return None
    pattern = _pattern(f.worker_pattern, whole_id) if f.worker_pattern else None
    tags = _tag_test(f.tags) if f.tags else None
    system = _tag_test(f.system_tags) if f.system_tags else None

    def match(
        worker: str, worker_tags: tuple[str, ...] | None, worker_system: tuple[str, ...] | None
    ) -> bool:
        if pattern is not None and pattern.fullmatch(worker) is None:
            return False
        if tags is not None and not tags(worker_tags):
            return False
        return system is None or system(worker_system)

    return match
