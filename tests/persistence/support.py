"""Helpers for persistence tests: an in-process server session on a data directory, and crashes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from workerhub import Clock, Settings
from workerhub.actors import Hub, open_hub
from workerhub.persistence import DiskStore, open_store

T0 = 1_700_000_000.0


class Crash(Exception):
    """Raised inside a session to leave it the way a crash would: no final snapshot."""


@asynccontextmanager
async def session(directory: Any, wall: float = T0, **settings: Any) -> AsyncIterator[tuple[Hub, DiskStore]]:
    """What ``serve()`` does minus HTTP: open the store, load it into a hub, keep it saved."""
    cfg = Settings(data_dir=str(directory), **settings)
    async with open_store(cfg) as store, open_hub(cfg, clock=Clock(wall), store=store) as hub:
        async with store.serving(hub):
            assert isinstance(store, DiskStore)
            yield hub, store
