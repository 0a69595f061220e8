"""A gate between mutations and snapshots: many writers at once, or one consistent cut.

It lives beside the hub, whose mutations pass it; storage closes it only through
:meth:`workerhub.actors.hub.Hub.writes_held` (the ``Persisted`` protocol of :mod:`workerhub.persistence`).

The hub appends a mutation to the journal and then applies it, with awaits in between. A snapshot must see
every journaled mutation applied and none half-done, or compacting the journal after it would lose one.
:class:`WriteGate` gives that cut: mutations run inside ``async with gate:`` concurrently; :meth:`closed`
stops new ones at the door, waits for those inside to finish (an fsync and a mailbox hop: milliseconds) and
holds the door while the snapshot copy is taken synchronously.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType

import trio

__all__ = ["WriteGate"]


class WriteGate:
    """``async with gate:`` around each mutation; ``async with gate.closed():`` for a consistent cut."""

    __slots__ = ("_active", "_drained", "_open")

    def __init__(self) -> None:
        self._active = 0
        self._open = trio.Event()
        self._open.set()
        self._drained: trio.Event | None = None

    @property
    def active(self) -> int:
        """Mutations inside the gate now."""
        return self._active

    def _check(self) -> None:
        """Invariants (called by the tests): a count never negative; a drain awaited only while shut."""
        assert self._active >= 0, self._active
        assert self._drained is None or not self._open.is_set(), "drain pending with the gate open"

    async def __aenter__(self) -> None:
        while not self._open.is_set():
            await self._open.wait()
        self._active += 1

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._active -= 1
        if self._active == 0 and self._drained is not None:
            self._drained.set()

    @asynccontextmanager
    async def closed(self) -> AsyncIterator[None]:
        """Hold the gate shut with no mutation inside, for the body of the block. One holder at a time."""
        if not self._open.is_set():
            raise RuntimeError("the write gate is already held")
        self._open = trio.Event()
        try:
            if self._active:
                self._drained = trio.Event()
                await self._drained.wait()
            yield
        finally:
            self._drained = None
            self._open.set()
