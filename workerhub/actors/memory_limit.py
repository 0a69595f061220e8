"""The process-wide soft memory limit (``Settings.max_memory_mb``): is the server above it right now?

Measured as the resident set size from ``/proc/self/statm`` (what the kernel's OOM killer weighs), read at
most once a second: one read costs a few microseconds, but admission runs on every status_report. Where
``/proc`` is missing (not Linux) the limit cannot be measured and is not enforced; that is logged once.
"""

from __future__ import annotations

import logging
import os
import time

__all__ = ["MemoryLimit", "rss_bytes"]

log = logging.getLogger(__name__)

_SAMPLE_SECONDS = 1.0
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int | None:
    """This process's resident set size in bytes, or None where it cannot be read."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


class MemoryLimit:
    """``over()`` is True while the last RSS sample is above ``limit_mb``; never True without a limit."""

    __slots__ = ("_limit", "_rss", "_sampled_at")

    def __init__(self, limit_mb: int | None) -> None:
        self._limit = None if limit_mb is None else limit_mb * 1024 * 1024
        self._sampled_at = -_SAMPLE_SECONDS
        self._rss: int | None = 0
        if self._limit is not None and rss_bytes() is None:
            log.warning("max_memory_mb is set but this system has no /proc/self/statm: it is not enforced")
            self._limit = None

    @property
    def limit_mb(self) -> int | None:
        return None if self._limit is None else self._limit // (1024 * 1024)

    @property
    def rss(self) -> int | None:
        """The last RSS sample, in bytes."""
        return self._rss

    def over(self) -> bool:
        if self._limit is None:
            return False
        # Real time, not the hub's clock: testing mode jumps that one, and this is about the machine.
        now = time.monotonic()
        if now - self._sampled_at >= _SAMPLE_SECONDS:
            self._sampled_at = now
            self._rss = rss_bytes()
        return self._rss is not None and self._rss > self._limit
