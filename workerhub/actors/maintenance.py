"""Maintenance of the registry: retention, reset between tests, the test clock, and counts for /metrics."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import trio

from ..stats import WorkerHistory
from .registry import Registry
from .worker import WorkerActor

__all__ = ["Maintenance", "TRIM_SLICE"]

TRIM_SLICE = 64
"""Histories trimmed between two checkpoints of the periodic retention pass."""

log = logging.getLogger(__name__)


class Maintenance(Registry):
    """Retention and housekeeping of the registry (a base of :class:`workerhub.actors.hub.Hub`)."""

    def trim(self) -> int:
        """Apply raw and tier retention now; returns the number of raw reports dropped."""
        return sum(self._trim_slices())

    def _trim_slices(self) -> Iterator[int]:
        """Retention in slices of :data:`TRIM_SLICE` histories: yields the raw reports each slice dropped.

        Each history is trimmed whole within one slice, so a caller may let other tasks run between
        slices: a report or a query then sees every history either trimmed or not yet, never half-trimmed.
        """
        now = self.clock.wall()
        cutoff = now - self.settings.raw_retention
        tier_cutoff = now - max(self.settings.tier_retention, self.settings.raw_retention)
        for company in list(self._companies.values()):
            dropped = 0
            registered: set[str] | None = None  # the ids registered now, built once per slice when needed
            for i, (worker_id, history) in enumerate(list(company.histories.items()), 1):
                dropped += history.drop_written_before(cutoff, tier_cutoff)
                if history.empty:
                    if registered is None:
                        # alive, not merely present: an actor past its deadline whose task has not run yet
                        # (one replayed from the journal at a start, say) is no longer registered
                        mono = self.clock.monotonic()
                        registered = {w for (_user, w), a in company.actors.items() if a.alive(mono)}
                    # still the company's (a reset between slices may have replaced the registry)
                    if worker_id not in registered and company.histories.get(worker_id) is history:
                        del company.histories[worker_id]
                if i % TRIM_SLICE == 0:
                    yield dropped
                    dropped, registered = 0, None  # ids may register while other tasks run
            yield dropped

    async def _trim_forever(self) -> None:
        period = max(1.0, min(60.0, self.settings.raw_retention / 10))
        while True:
            await trio.sleep(period)
            dropped = 0
            # In slices, letting requests in between: one pass over 2,000 histories held the loop ~50 ms.
            for part in self._trim_slices():
                dropped += part
                await trio.lowlevel.checkpoint()
            if dropped:
                log.debug("retention dropped %d reports", dropped)

    def reset(self) -> None:
        """Forget every worker and every stat, at once, and put wall time back to real time (or to the
        clock's pinned start): for test suites, between tests.

        Constant time: the registry is swapped for an empty one, and the forgotten actors (unreachable from
        now on) are retired by a background task in small batches, so that a reset with thousands of
        workers neither blocks the caller nor stalls the requests that follow it.
        """
        old, self._companies = self._companies, {}
        self.clock.start()
        actors = [actor for company in old.values() for actor in company.actors.values()]
        if actors:
            self._nursery.start_soon(self._retire_forgotten, actors)

    @staticmethod
    async def _retire_forgotten(actors: list[WorkerActor]) -> None:
        for i, actor in enumerate(actors, 1):
            actor.retire()  # its _forget finds no registry entry for it: a no-op
            if i % 64 == 0:
                await trio.sleep(0)  # let requests in between

    def advance_clock(self, seconds: float) -> None:
        """Move time forward (testing mode only: trio must run on a MockClock); expiries fire."""
        self.clock.advance(seconds)

    def statistics(self) -> dict[str, int]:
        """Counts of what the hub holds: companies, live workers, histories, retained reports."""
        return {
            "companies": len(self._companies),
            "workers": sum(len(c.actors) for c in self._companies.values()),
            "histories": sum(len(c.histories) for c in self._companies.values()),
            "reports": sum(len(h) for c in self._companies.values() for h in c.histories.values()),
        }

    def company_statistics(self) -> dict[str, dict[str, int]]:
        """Per company: live ``workers``, retained ``histories``, ``reports`` and stat ``values`` (for /metrics)."""
        mono = self.clock.monotonic()
        return {
            company_id: {
                "workers": sum(1 for a in c.actors.values() if a.alive(mono)),
                "histories": len(c.histories),
                "reports": sum(len(h) for h in c.histories.values()),
                "values": sum(sum(h.counts.values()) for h in c.histories.values()),
            }
            for company_id, c in self._companies.items()
        }

    def live_histories(self) -> Iterator[tuple[str, str, WorkerHistory]]:
        """``(company, worker id, history)`` of every live worker, once per id (for /metrics' fleet gauges)."""
        mono = self.clock.monotonic()
        for company_id, c in list(self._companies.items()):
            seen = {a.state.id for a in c.actors.values() if a.alive(mono)}
            for worker_id in sorted(seen):
                history = c.histories.get(worker_id)
                if history is not None:
                    yield company_id, worker_id, history

    def histories(self) -> Iterator[tuple[str, str, WorkerHistory]]:
        """``(company, worker id, history)`` of every retained history, live or not (for checks and tools)."""
        for company_id, c in list(self._companies.items()):
            for worker_id, history in list(c.histories.items()):
                yield company_id, worker_id, history
