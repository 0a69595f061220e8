"""Which API behaviour a call gets, decided from its path version in this one place (decisions 1-2).

* 2.4 <= version < 2.32: the 2020 server's answers (the seed schema, quirks included).
* 2.32 and above, and unversioned calls: today's answers (the 2.32 get_stats and activity grid, register
  timeout 0/null = the default, unregister of an unknown worker = 200, ...).

Unversioned calls count as ``max_api_version``, and versions above it are served as it, as upstream's
``check_max_version: false`` does. Endpoints receive the :class:`Dialect`; none of them parses a path.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

__all__ = ["HEAD_FROM", "LEGACY", "Dialect", "dialect_for", "version_tuple"]

HEAD_FROM = (2, 32)
"""The first version answered with today's behaviour (the get_stats rewrite of server v2.1.0)."""


@dataclass(frozen=True, slots=True)
class Dialect:
    """The version a call is served at (its path version, capped at ``max_api_version``)."""

    version: tuple[int, int]

    @property
    def head(self) -> bool:
        """Today's behaviour (2.32 and above) rather than the 2020 server's."""
        return self.version >= HEAD_FROM


LEGACY = Dialect((2, 4))
"""The seed server's dialect: what an in-process caller that names no version gets."""


def version_tuple(version: str) -> tuple[int, int]:
    """``"2.23"`` → ``(2, 23)`` (versions are already normalized by the router)."""
    major, _, minor = version.partition(".")
    return int(major), int(minor or 0)


@lru_cache(maxsize=256)
def dialect_for(requested: str, max_version: str) -> Dialect:
    """The dialect of a call whose (normalized) requested version is ``requested``."""
    return Dialect(min(version_tuple(requested), version_tuple(max_version)))
