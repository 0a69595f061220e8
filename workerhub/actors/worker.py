"""One registered worker: a trio task that owns the worker's state and applies its mutations in order.

The actor holds the registration (ip, queues, task, times, tags) and a reference to the worker's stats
history (which the hub keeps after the actor is gone, spec Q18), and its timeout as the deadline of a cancel
scope that every register and status_report moves forward. Mutations arrive through a bounded mailbox, so
a flood of reports for one worker back-pressures its senders instead of queueing without limit.

Reads (get_all, stats queries) do not go through the mailbox: trio is single-threaded and the apply
methods never await, so the hub may read actor-owned state synchronously between two mutations. A
message round trip to each of 10,000 actors costs ~150 ms per query; a direct read ~1 ms.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import trio

from ..clock import Clock
from ..messages import Identity, RegisterRequest, StatusReport
from ..stats import WorkerHistory

__all__ = ["WorkerActor", "WorkerState", "ActorGone", "MAILBOX_SIZE"]

log = logging.getLogger(__name__)

MAILBOX_SIZE = 16
"""Pending mutations per worker before senders wait (a well-behaved agent has at most one in flight)."""


class ActorGone(Exception):
    """The actor expired or was unregistered before it could apply the message; look it up again."""


def iso(wall: float) -> str:
    """Naive UTC ISO-8601, as clearml-server writes its datetimes (quirk Q24)."""
    # isoformat of an aware UTC datetime ends in "+00:00"; slicing it off is 30 % cheaper than replace()
    return datetime.fromtimestamp(wall, UTC).isoformat()[:-6]


@dataclass(slots=True)
class WorkerState:
    """The registration of one worker. Mutable, and mutated only by its actor."""

    id: str
    identity: Identity
    ip: str
    register_timeout: int
    register_time: float
    last_activity_time: float
    last_report_time: float | None = None
    queues: list[str] = field(default_factory=list)
    queue: str | None = None
    task: str | None = None
    task_since: float | None = None
    tags: tuple[str, ...] | None = None
    system_tags: tuple[str, ...] | None = None

    # get_all cache (not part of the registration): the wire fields that change only on register, keyed by
    # what they are built from, and the last ISO string per time field. Every report moves the two activity
    # times, so caching the whole object would rarely hit while the worker reports; iso() is most of the cost.
    _static_key: tuple[Any, ...] | None = field(default=None, init=False, repr=False, compare=False)
    _static: dict[str, Any] | None = field(default=None, init=False, repr=False, compare=False)
    _iso_at: float | None = field(default=None, init=False, repr=False, compare=False)
    _iso_str: str = field(default="", init=False, repr=False, compare=False)

    def _iso(self, wall: float) -> str:
        # last_activity_time and last_report_time are usually the same instant: one conversion serves both
        if wall != self._iso_at:
            self._iso_str = iso(wall)
            self._iso_at = wall
        return self._iso_str

    def to_wire(self, now: float, head: bool = False) -> dict[str, Any]:
        """The get_all worker object (null fields omitted, spec §5): a fresh dict (nested ones may be shared).

        ``head`` (API >= 2.32): ``tags`` and ``system_tags`` always, as lists; else only the ones set.
        """
        key = (self.identity, self.ip, self.register_time, self.register_timeout)
        static = self._static
        if static is None or key != self._static_key:
            ident = self.identity
            static = self._static = {
                "id": self.id,
                "key": f"worker_{ident.company}_{ident.user}_{self.id}",
                "user": {"id": ident.user, "name": ident.user_name or ident.user},
                "company": {"id": ident.company, "name": ident.company_name or ident.company},
                "ip": self.ip,
                "register_time": iso(self.register_time),
                "register_timeout": self.register_timeout,
            }
            self._static_key = key
        out = static.copy()
        out["last_activity_time"] = self._iso(self.last_activity_time)
        if self.last_report_time is not None:
            out["last_report_time"] = self._iso(self.last_report_time)
        if self.task is not None:
            since = self.task_since if self.task_since is not None else now
            # nearest ms, not truncated: a restored clock's float noise must not turn 3300 ms into 3299
            out["task"] = {"id": self.task, "running_time": max(0, round((now - since) * 1000))}
        out["queues"] = [{"id": q} for q in self.queues]
        if self.queue is not None and self.queue in self.queues:
            out["queue"] = {"id": self.queue}
        if head:
            out["tags"] = list(self.tags or ())
            out["system_tags"] = list(self.system_tags or ())
            return out
        if self.tags is not None:
            out["tags"] = list(self.tags)
        if self.system_tags is not None:
            out["system_tags"] = list(self.system_tags)
        return out


def _dedup(ids: tuple[str, ...]) -> list[str]:
    # upstream keeps queues in a set (unordered); first-seen order is a valid, deterministic choice (Q11)
    return list(dict.fromkeys(ids))


class _Call:
    __slots__ = ("apply", "done", "error")

    def __init__(self, apply: Callable[[], None]) -> None:
        self.apply = apply
        self.done = trio.Event()
        self.error: BaseException | None = None


class WorkerActor:
    """The trio task of one registered worker. Created and retired by the hub only."""

    __slots__ = (
        "state", "history", "deadline", "retired", "_clock", "_send", "_receive", "_on_retire", "_scope"
    )

    def __init__(
        self,
        state: WorkerState,
        history: WorkerHistory,
        clock: Clock,
        on_retire: Callable[[WorkerActor], None],
    ) -> None:
        self.state = state
        self.history = history
        self.retired = False
        self._clock = clock
        self._on_retire = on_retire
        self.deadline = clock.monotonic() + state.register_timeout
        self._send, self._receive = trio.open_memory_channel[_Call](MAILBOX_SIZE)
        self._scope: trio.CancelScope | None = None  # the running task's timeout scope

    @property
    def key(self) -> tuple[str, str]:
        return (self.state.identity.user, self.state.id)

    def alive(self, now_monotonic: float) -> bool:
        return not self.retired and now_monotonic < self.deadline

    # --- the mailbox -----------------------------------------------------------------------------------

    async def call(self, apply: Callable[[], None]) -> None:
        """Have the actor run ``apply`` (a sync mutation) in order; raises ActorGone if it retired first.

        When the actor sits idle on an empty mailbox, the mutation is applied right here on its behalf:
        nothing is queued ahead of it and the actor cannot run meanwhile (trio is single-threaded and
        ``apply`` never awaits), so the effect and the order are exactly those of a delivery, without
        the ~25 µs of a channel send, an event and two task switches on the status_report hot path.
        """
        stats = self._send.statistics()
        scope = self._scope
        if scope is not None and stats.current_buffer_used == 0 and stats.tasks_waiting_receive:
            if not self.alive(self._clock.monotonic()):
                raise ActorGone
            apply()
            if not self.retired:
                scope.deadline = self.deadline
            return
        call = _Call(apply)
        try:
            await self._send.send(call)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise ActorGone from None
        await call.done.wait()
        if call.error is not None:
            raise call.error

    async def run(self) -> None:
        """Apply mailbox messages until unregistered or the deadline passes, then retire."""
        async with self._receive:
            with trio.CancelScope(deadline=self.deadline) as scope:
                self._scope = scope
                async for call in self._receive:
                    if self.retired or not self.alive(self._clock.monotonic()):
                        call.error = ActorGone()
                    else:
                        try:
                            call.apply()
                        except BaseException as exc:  # delivered to the caller, which owns the error
                            call.error = exc
                    call.done.set()
                    if self.retired:
                        break
                    scope.deadline = self.deadline
            self._scope = None
            if scope.cancelled_caught:
                log.debug("worker %s expired", self.state.id)
            self.retire()
            # Wake anyone who queued behind the retirement: they will look the worker up again.
            while True:
                try:
                    call = self._receive.receive_nowait()
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
                call.error = ActorGone()
                call.done.set()

    def retire(self) -> None:
        """Leave the registry now (idempotent). The history stays with the hub."""
        if not self.retired:
            self.retired = True
            self._send.close()
            self._on_retire(self)

    # --- mutations: synchronous, called from the actor task (or at replay, before it runs) ------------

    def apply_register(self, req: RegisterRequest, ip: str, now: float) -> None:
        """Completely replace the registration (spec §1): task, queue and times start afresh."""
        timeout = req.timeout if req.timeout is not None else self.state.register_timeout
        self.state = WorkerState(
            id=self.state.id,
            identity=self.state.identity,
            ip=ip,
            register_timeout=timeout,
            register_time=now,
            last_activity_time=now,
            queues=_dedup(req.queues),
            tags=req.tags,
            system_tags=req.system_tags,
        )
        self._renew()

    def apply_report(self, report: StatusReport, ip: str, now: float) -> None:
        """Apply a status_report in upstream's order (spec §4.1)."""
        st = self.state
        st.ip = ip
        if report.samples:
            self.history.add(report.timestamp, report.task is not None, report.samples, now)
        st.last_activity_time = now
        st.queue = report.queue
        if report.queues:
            st.queues = _dedup(report.queues)
        if report.task:
            if report.task != st.task:
                st.task, st.task_since = report.task, now
        else:
            st.task = st.task_since = None
        # Every report replaces both tag lists, absent or null clearing them (api-versions §4.4: upstream's
        # ListField turns both into []); the agent sends `tags: null` unless worker tags are configured.
        st.tags = report.tags
        st.system_tags = report.system_tags
        st.last_report_time = now
        self._renew()

    def apply_unregister(self) -> None:
        self.retire()

    def _renew(self) -> None:
        self.deadline = self._clock.monotonic() + self.state.register_timeout

