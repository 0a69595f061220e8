"""The store that keeps nothing: state lives only in the hub's memory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from ..messages import Identity
from .store import Persisted

__all__ = ["MemoryStore"]


class MemoryStore:
    """Persist nothing. Every operation succeeds at once."""

    async def append(self, op: str, identity: Identity, payload: Any, ip: str, at: float) -> None:
        return None

    @asynccontextmanager
    async def serving(self, target: Persisted) -> AsyncIterator[None]:
        yield

    async def aclose(self) -> None:
        return None
