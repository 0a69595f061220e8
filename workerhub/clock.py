"""The hub's notion of time: wall-clock seconds that follow trio's clock.

Deadlines (worker timeouts) live on trio's clock, and wall time is derived from the same clock, so a test
that runs trio on :class:`trio.testing.MockClock` and jumps it moves expiry, ``last_seen`` and every
``*_time`` field together, deterministically, without sleeping.
"""

from __future__ import annotations

import sys
import time

import trio

from .errors import Forbidden

__all__ = ["Clock"]


class Clock:
    """Wall time (epoch seconds) = the wall time at :meth:`start` + trio time elapsed since then.

    ``wall_at_start`` pins the wall time for reproducible tests; by default it is ``time.time()``.
    Must be started inside ``trio.run`` before use.
    """

    __slots__ = ("_wall0", "_trio0", "_fixed_wall0")

    def __init__(self, wall_at_start: float | None = None) -> None:
        self._fixed_wall0 = wall_at_start
        self._wall0 = 0.0
        self._trio0 = 0.0

    def start(self) -> None:
        self._trio0 = trio.current_time()
        self._wall0 = time.time() if self._fixed_wall0 is None else self._fixed_wall0

    def wall(self) -> float:
        """Seconds since the epoch, as the hub sees them."""
        return self._wall0 + (trio.current_time() - self._trio0)

    @staticmethod
    def monotonic() -> float:
        """trio's clock: what worker deadlines are measured on."""
        return trio.current_time()

    @staticmethod
    def controllable() -> bool:
        # trio.testing is not imported on the serve path (it costs ~0.1-0.2 s of start, pytest included):
        # a MockClock can only be running if its module was imported by whoever made it
        testing = sys.modules.get("trio.testing")
        return testing is not None and isinstance(trio.lowlevel.current_clock(), testing.MockClock)

    @staticmethod
    def advance(seconds: float) -> None:
        """Jump time forward (only when trio runs on a MockClock); deadlines that pass fire at once."""
        from trio.testing import MockClock  # late: testing mode only (see controllable)

        clock = trio.lowlevel.current_clock()
        if not isinstance(clock, MockClock):
            raise Forbidden("the clock can only be moved when the server runs in testing mode")
        if seconds < 0:
            raise ValueError("time only moves forward")
        clock.jump(seconds)

    @staticmethod
    async def advance_settled(seconds: float) -> None:
        """:meth:`advance`, between two waits for every task to block, for test control (``debug.advance_clock``,
        ``ServerHandle.advance_clock``). Settling first lets in-flight work finish at the old time (a response
        still being sent cannot see its own timeout fire); settling after lets the expired actors retire, so
        state is settled when this returns."""
        from trio.testing import wait_all_tasks_blocked  # late: testing mode only (see controllable)

        await wait_all_tasks_blocked()
        Clock.advance(seconds)
        await wait_all_tasks_blocked()
