"""The durable store: a snapshot plus the journal of what happened since, in one data directory.

Files in the data directory (see docs/persistence.md)::

    lock                     held (flock) by the running server: one server per directory
    snapshot.msgpack         the state at the last snapshot's cut
    snapshot.msgpack.tmp     a snapshot being written (removed at start if a crash left it)
    journal-<n>.wal          records since the cut, in segments; only segments >= the snapshot's are kept

Start: load the snapshot (refusing a bad one with a one-line reason), refuse a journal that follows a
snapshot that is not there (unless ``allow_partial_start``), replay the journal segments after its cut at
their recorded times, then append to a fresh segment. Running: every mutation is journaled before it is
applied (fsync per :attr:`Settings.journal_fsync`); every ``snapshot_interval`` seconds, and at a clean stop,
a snapshot is cut (mutations held at the gate while the journal rotates and the writer forks, or the state
is exported, :mod:`.writer`), written and verified, and only then the journal segments before its cut are
deleted. A failed snapshot is logged and retried with backoff; it never stops the server and never deletes
a segment.

Layering: this package never imports ``workerhub.actors``; it persists anything that implements
:class:`~.store.Persisted` and exchanges plain :mod:`workerhub.hubstate` data with it.
"""

from __future__ import annotations

import errno
import fcntl
import gc
import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from ..config import Settings
from ..errors import DataError
from ..messages import Identity
from ..storestats import PersistenceStatistics
from .format import PersistenceError, encode_record, frame
from .journal import Journal, segment_path, segments, unlink_quietly
from .journal_scan import JournalScan, scan_journal
from .memory import MemoryStore
from .snapshot import SNAPSHOT_NAME, SnapshotInfo, read_snapshot
from .store import Persisted, Store
from .writer import ForkedWrite, SnapshotFailed, fork_available, start_fork, write_in_thread

__all__ = ["DiskStore", "default_data_dir", "open_store"]

log = logging.getLogger(__name__)

FSYNC_INTERVAL = 1.0
"""Seconds between journal fsyncs in ``interval`` mode: what an OS crash can lose at most."""

MAX_BACKOFF = 8
"""After consecutive snapshot failures the next attempt waits ``snapshot_interval`` times 2, 4, then 8 at most."""


def default_data_dir() -> str:
    """``$XDG_DATA_HOME/workerhub``, or ``~/.local/share/workerhub`` when XDG_DATA_HOME is unset."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "workerhub")


def data_dir_of(settings: Settings) -> str | None:
    """The directory ``settings`` persist to, or None for memory only (``persist`` off)."""
    if not settings.persist:
        return None
    return os.path.abspath(os.path.expanduser(settings.data_dir or default_data_dir()))


@asynccontextmanager
async def open_store(settings: Settings) -> AsyncIterator[Store]:
    """The store ``settings`` ask for: :class:`DiskStore` on the data directory, or :class:`MemoryStore`."""
    directory = data_dir_of(settings)
    if directory is None:
        if settings.data_dir:
            log.warning("persistence is off: data_dir %s is not used", settings.data_dir)
        yield MemoryStore()
        return
    store = DiskStore(
        directory,
        journal_fsync=settings.journal_fsync,
        snapshot_interval=settings.snapshot_interval,
        snapshot_writer=settings.snapshot_writer,
        allow_partial_start=settings.allow_partial_start,
    )
    try:
        yield store
    finally:
        with trio.CancelScope(shield=True):
            await store.aclose()


class DiskStore:
    """Snapshots plus journal in ``directory``. Locks the directory on creation (PersistenceError if taken)."""

    def __init__(
        self,
        directory: str,
        *,
        journal_fsync: str = "interval",
        snapshot_interval: float = 300.0,
        snapshot_writer: str = "fork",
        allow_partial_start: bool = False,
    ) -> None:
        if journal_fsync not in ("always", "interval", "never"):
            raise ValueError(f"journal_fsync must be always, interval or never, not {journal_fsync!r}")
        if snapshot_writer not in ("fork", "thread"):
            raise ValueError(f"snapshot_writer must be fork or thread, not {snapshot_writer!r}")
        if snapshot_writer == "fork" and not fork_available():
            log.warning("os.fork is not available here: snapshots are written by a thread")
            snapshot_writer = "thread"
        self.directory = directory
        self.journal_fsync = journal_fsync
        self.snapshot_interval = snapshot_interval
        self.snapshot_writer = snapshot_writer
        self.allow_partial_start = allow_partial_start
        self.last_cut_seconds = 0.0  # how long the last cut held mutations at the gate (synchronous part)
        self.failures = 0  # snapshot attempts that failed since the last success
        self._journal: Journal | None = None
        self._changes = 0  # appends since the last snapshot's cut
        self._saved = False  # a snapshot of the current state (but for _changes) is on disk
        self._snapshot_lock = trio.Lock()
        self.statistics = PersistenceStatistics()  # read at scrape time by /metrics and /readyz
        self._lock_fd = self._lock_directory()

    def _lock_directory(self) -> int | None:
        try:
            os.makedirs(self.directory, exist_ok=True)
        except OSError as exc:
            raise PersistenceError(
                f"{self.directory}: cannot create the data directory ({exc.strerror}); "
                "pass --data-dir with a writable directory, or --no-persist"
            ) from exc
        path = os.path.join(self.directory, "lock")
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                return None  # a read-only directory without a lock file: nothing can be written anyway
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise PersistenceError(
                    f"{self.directory}: another workerhub is using this data directory; stop it, "
                    "or pass a different --data-dir"
                ) from exc
            raise
        return fd

    # --- the Store protocol -----------------------------------------------------------------------------

    async def append(self, op: str, identity: Identity, payload: Any, ip: str, at: float) -> None:
        """Journal one mutation; with ``always`` it is on disk when this returns. DataError if it cannot be."""
        journal = self._journal
        if journal is None:
            raise DataError("the store is not open")
        ticket = journal.write(frame(encode_record(op, identity, payload, ip, at)))
        self._changes += 1
        self.statistics.journal_appends += 1
        if self.journal_fsync == "always":
            await journal.sync(ticket)

    @asynccontextmanager
    async def serving(self, target: Persisted) -> AsyncIterator[None]:
        """Load the directory into ``target``; snapshot periodically; a final snapshot when the block ends
        cleanly."""
        await self._load(target)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._snapshot_forever, target)
            if self.journal_fsync == "interval":
                nursery.start_soon(self._fsync_forever)
            yield
            nursery.cancel_scope.cancel()
        await self.snapshot(target)

    async def aclose(self) -> None:
        if self._journal is not None:
            await self._journal.aclose()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    # --- start ------------------------------------------------------------------------------------------

    async def _load(self, target: Persisted) -> None:
        directory = self.directory
        snapshot_path = os.path.join(directory, SNAPSHOT_NAME)
        tmp = snapshot_path + ".tmp"
        if os.path.exists(tmp):
            log.info("removing %s: a snapshot write that did not finish (the previous snapshot is intact)", tmp)
            unlink_quietly(tmp)
        first = 0
        loaded: int | None = None  # the journal cut of the snapshot loaded
        state = None
        if os.path.exists(snapshot_path):
            header, state = await trio.to_thread.run_sync(read_snapshot, snapshot_path)
            first = loaded = int(header["journal"])
            self._saved = True
            self.statistics.last_snapshot_at = float(header["created_at"])
        for n in segments(directory):
            if n < first:  # covered by the snapshot; left by a crash between its rename and this cleanup
                unlink_quietly(segment_path(directory, n))
        scan = await trio.to_thread.run_sync(scan_journal, directory, first)
        self._check_chain(scan, loaded, snapshot_path)
        # From the restore to the end of the replay nothing awaits: a restored worker that has expired
        # since must still be there (its actor not yet run, so not retired) when the journal replays a
        # report it received while alive.
        if state is not None:
            expired = target.restore(state)
            log.info(
                "loaded %s: %d workers (%d expired while the server was down), %d histories",
                snapshot_path, len(state.workers) - expired, expired, len(state.histories),
            )
        for r in scan.records:
            target.replay(r.op, r.identity, r.payload, r.ip, r.at)
        if scan.records or scan.torn:
            log.info("replayed %d journal records from %d segments", len(scan.records), len(scan.segments))
        # Retention is not journaled: rows the running server had trimmed since its last snapshot (which
        # may have been skipped: nothing was journaled) come back from the files; drop them now, so the
        # first answers after a start are the ones the stopped server gave.
        target.trim()
        self._changes = len(scan.records)
        # The state just loaded is the bulk of the process's long-lived objects. Moving it out of the
        # collector's reach keeps full collections (which hold the GIL, so stall every request) from
        # walking it again and again: measured 130 ms of CPU per collection at 300 workers x 24 h. The
        # price: a reference cycle alive now is never collected once it becomes garbage (e.g. the actor
        # of a restored worker that later expires, ~5 KB each, once).
        gc.collect()
        gc.freeze()
        base = loaded if loaded is not None else (scan.bases.get(scan.segments[0]) if scan.segments else None)
        self._journal = Journal(directory, max(scan.segments, default=first - 1) + 1, base, self.statistics)
        try:
            self._journal.open()
        except OSError as exc:
            self.statistics.journal_error = f"{directory} is not writable: {exc.strerror}"
            log.error(
                "%s is not writable (%s): serving what was loaded, but every register, unregister and "
                "status_report fails with 500/100 until the journal can be written", directory, exc.strerror,
            )

    # --- snapshots ----------------------------------------------------------------------------------------

    def _check_chain(self, scan: JournalScan, loaded: int | None, snapshot_path: str) -> None:
        """Refuse a journal whose first segment follows a snapshot that is not there (or an older one)."""
        if not scan.segments or scan.segments[0] not in scan.bases:
            return
        first = scan.segments[0]
        base = scan.bases[first]
        if base is None or (loaded is not None and loaded >= base):
            return
        missing = (
            f"{snapshot_path} is missing" if loaded is None
            else f"{snapshot_path} is older (journal cut {loaded}) than the snapshot the journal follows"
        )
        what = (
            f"{missing}: journal segment {first} follows the snapshot cut at segment {base}, so everything "
            "recorded before that cut is not here"
        )
        if not self.allow_partial_start:
            raise PersistenceError(
                f"{what}; restore the snapshot from a backup, or pass --allow-partial-start to start with "
                "only the journal's part of the data"
            )
        log.error("STARTING WITH PARTIAL DATA (--allow-partial-start): %s; that data is lost", what)

    # --- snapshots ----------------------------------------------------------------------------------------

    async def snapshot(self, target: Persisted, *, force: bool = False) -> SnapshotInfo | None:
        """Cut, write, verify and compact now; returns None when nothing changed since the last one (unless
        ``force``) or when the snapshot failed (logged with the reason: the journal still holds everything,
        and no segment was deleted)."""
        journal = self._journal
        if journal is None:
            return None
        async with self._snapshot_lock:
            if not force and self._changes == 0 and self._saved:
                return None
            await journal.prepare()  # the next segment, created before the cut and off the event loop
            child: ForkedWrite | None = None
            state = None
            failure: BaseException | None = None
            async with target.writes_held():
                started = time.perf_counter()
                cut, old_fd = journal.rotate()
                changes, self._changes = self._changes, 0
                try:
                    if self.snapshot_writer == "fork":
                        child = start_fork(target.export_state, self.directory, cut)
                    else:
                        state = target.export_state()
                except Exception as exc:  # noqa: BLE001 - any failure of the cut is a failed snapshot, retried
                    failure = exc
                self.last_cut_seconds = time.perf_counter() - started
            done = False
            try:
                await journal.retire(old_fd)
                if failure is not None:
                    raise SnapshotFailed(f"the cut failed: {type(failure).__name__}: {failure}") from failure
                if child is not None:
                    info = await child.wait()
                else:
                    assert state is not None
                    info = await write_in_thread(state, self.directory, cut)
                    del state
            except SnapshotFailed as exc:
                self.failures += 1
                self.statistics.snapshot_failures += 1
                log.error(
                    "snapshot failed (%s); the journal keeps every change and no segment was deleted; "
                    "retrying in %.1f s", exc, self._next_delay(),
                )
                return None
            else:
                done = True
            finally:
                if not done:  # failed, or cancelled (the server is stopping)
                    self._changes += changes
                if child is not None:
                    child.kill()  # a no-op once reaped; else a half-written temp file never replaces anything
            await trio.to_thread.run_sync(_drop_segments_before, self.directory, cut)
            self._saved, self.failures = True, 0
            self.statistics.snapshot_done(info.wall, info.seconds, info.size)
            log.info(
                "snapshot: %d workers, %d histories, %.1f MB in %.2f s, verified (%s writer; requests held "
                "for the cut: %.1f ms)",
                info.workers, info.histories, info.size / 1e6, info.seconds, self.snapshot_writer,
                self.last_cut_seconds * 1000,
            )
            return info

    def _next_delay(self) -> float:
        backoff = min(2**self.failures, MAX_BACKOFF) if self.failures else 1
        return self.snapshot_interval * backoff

    async def _snapshot_forever(self, target: Persisted) -> None:
        while True:
            await trio.sleep(self._next_delay())
            try:
                await self.snapshot(target)
            except Exception:  # a bug in the snapshot path must not stop the server; the journal has it all
                self.failures += 1
                log.exception("snapshot failed unexpectedly; retrying in %.1f s", self._next_delay())

    async def _fsync_forever(self) -> None:
        assert self._journal is not None
        while True:
            await trio.sleep(FSYNC_INTERVAL)
            await self._journal.sync_all()


def _drop_segments_before(directory: str, cut: int) -> None:
    for n in segments(directory):
        if n < cut:
            unlink_quietly(segment_path(directory, n))
