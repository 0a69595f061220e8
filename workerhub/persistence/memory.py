"""The store that keeps nothing: state lives only in the hub's memory."""

from __future__ import annotations

from typing import Any

from ..messages import Identity

__all__ = ["MemoryStore"]


class MemoryStore:
    """Persist nothing. Every operation succeeds at once."""

    async def append(self, op: str, identity: Identity, payload: Any, ip: str, at: float) -> None:
        return None

    async def aclose(self) -> None:
        return None
