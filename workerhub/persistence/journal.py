"""The append-only journal: every accepted mutation, framed, in segment files ``journal-<n>.wal``.

This module writes segments; :mod:`.journal_scan` reads them back at a start.

Writing: :meth:`Journal.write` hands the record to the kernel with one ``os.write`` on the event loop (a few
µs into the page cache; from then on it survives a crash of the *process*), and :meth:`Journal.sync` makes it
survive a crash of the *machine* with an ``fsync`` in a worker thread. Concurrent ``sync`` calls share one
fsync (group commit): a trio.Lock queues them and each finds its record already covered by the one before.

Segments: a snapshot rotates the journal to a new segment at its cut and, once the snapshot is on disk and
verified, deletes the older ones (compaction). A segment starts with :data:`~.format.JOURNAL_MAGIC` and a
header frame ``{"format", "kind": "journal", "segment": n, "base": b}``: its records apply on top of the
snapshot cut at segment ``b`` (or, while that snapshot is not written, on top of the segments before it);
``b`` is None when the chain starts from an empty directory. A start uses ``base`` to refuse a journal
whose snapshot is missing.

Failure: a write that fails is rolled back (truncate) and the segment abandoned, so the file never holds a
half record followed by more; a failed fsync abandons the segment too (after one, the kernel may have dropped
the pages: the data cannot be trusted to be on disk). The next append opens a fresh segment.
"""

from __future__ import annotations

import logging
import os
import re
import time

import trio

from ..errors import DataError
from ..storestats import PersistenceStatistics
from .format import JOURNAL_FORMAT, JOURNAL_MAGIC, frame, pack

__all__ = ["Journal", "fsync_dir", "segment_path", "segments", "unlink_quietly"]

log = logging.getLogger(__name__)

_SEGMENT = re.compile(r"^journal-(\d{8,})\.wal$")


def segment_path(directory: str, n: int) -> str:
    return os.path.join(directory, f"journal-{n:08d}.wal")


def segments(directory: str) -> list[int]:
    """Segment numbers present in ``directory``, ascending."""
    found = []
    for name in os.listdir(directory):
        m = _SEGMENT.match(name)
        if m:
            found.append(int(m[1]))
    return sorted(found)


def fsync_dir(directory: str) -> None:
    """Make a create/rename/delete in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Journal:
    """The open segment and its durability bookkeeping. Driven from one trio thread.

    Segment numbers are handed out in increasing order (``first`` and up), each at most once, so replaying
    segments in number order replays records in the order they were written.
    """

    def __init__(
        self, directory: str, first: int, base: int | None = None, statistics: PersistenceStatistics | None = None
    ) -> None:
        self.directory = directory
        self.base = base  # the snapshot cut the records of new segments follow (None: an empty start)
        self.statistics = statistics or PersistenceStatistics()  # read by /metrics and /readyz
        self.segment = -1  # number of the open segment (the last one opened)
        self._next = first  # the next unused segment number
        self._fd: int | None = None
        self._prepared: tuple[int, int, int] | None = None  # (number, fd, header length), made ahead
        self._offset = 0  # end of the last whole record in the open segment
        self._written = 0  # bytes handed to the kernel since start (all segments): a write's ticket
        self._synced = 0  # every ticket <= this is on disk
        self._failed = 0  # every ticket <= this was in a segment abandoned before it was synced
        self._dir_dirty = False  # the open segment's directory entry is not yet fsynced
        self._lock = trio.Lock()

    @property
    def is_open(self) -> bool:
        return self._fd is not None

    def _check(self) -> None:
        """Invariants (called by the tests): durable bookkeeping in order, segment numbers never reused."""
        assert 0 <= self._synced <= self._written, (self._synced, self._written)
        assert 0 <= self._failed <= self._written, (self._failed, self._written)
        assert self.segment < self._next, (self.segment, self._next)
        if self._prepared is not None:
            assert self._prepared[0] < self._next, (self._prepared, self._next)
        if self._fd is not None:
            assert self._offset > 0 and self.segment in segments(self.directory), self.segment
            assert max(segments(self.directory)) <= max(self.segment, self._prepared[0] if self._prepared else -1)
        assert self.base is None or self.base <= max(self.segment, 0), (self.base, self.segment)

    def open(self) -> None:
        """Create the next segment and write to it (sync: a few syscalls). OSError if the directory refuses."""
        n = self._next
        self._next += 1
        fd, head = _create_segment(self.directory, n, self.base)
        self._fd, self.segment, self._offset, self._dir_dirty = fd, n, head, True

    async def prepare(self) -> None:
        """Create the segment the next :meth:`rotate` switches to, in a thread.

        Why: creating a file is a metadata operation that can wait hundreds of ms for the file system's
        journal while a big snapshot is being flushed; done here, the cut itself only swaps descriptors.
        """
        if self._prepared is not None:
            return
        n = self._next
        self._next += 1
        try:
            fd, head = await trio.to_thread.run_sync(_create_segment, self.directory, n, n)
        except OSError as exc:
            log.error("cannot create journal segment %d: %s", n, _reason(exc))
            return
        self._prepared = (n, fd, head)

    def write(self, record: bytes) -> int:
        """Append one framed record; returns its ticket for :meth:`sync`. Raises DataError if it failed."""
        if self._fd is None:
            try:
                self.open()
            except OSError as exc:
                self.statistics.journal_error = f"journal not writable: {_reason(exc)}"
                raise DataError(self.statistics.journal_error) from exc
        fd = self._fd
        assert fd is not None
        try:
            _write_all(fd, record)
        except OSError as exc:
            try:
                os.ftruncate(fd, self._offset)  # no half record left behind a later one
            except OSError:
                pass  # then it is a torn tail: dropped (with a warning) at the next start
            self._abandon()
            self.statistics.journal_error = f"journal write failed: {_reason(exc)}"
            raise DataError(self.statistics.journal_error) from exc
        self.statistics.journal_error = None
        self._offset += len(record)
        self._written += len(record)
        return self._written

    async def sync(self, ticket: int) -> None:
        """Return once the record with ``ticket`` is on disk; DataError if it cannot be."""
        async with self._lock:
            if self._synced >= ticket:
                return  # covered by the fsync of an earlier caller (group commit)
            if self._failed >= ticket or self._fd is None:
                raise DataError("journal fsync failed")
            fd, upto, dir_dirty = self._fd, self._written, self._dir_dirty
            started = time.perf_counter()
            try:
                await trio.to_thread.run_sync(_fsync, fd, self.directory if dir_dirty else None)
            except OSError as exc:
                log.error("journal fsync failed (%s): abandoning segment %d", _reason(exc), self.segment)
                self.statistics.journal_error = f"journal fsync failed: {_reason(exc)}"
                self._failed = upto
                self._abandon()
                raise DataError(f"journal fsync failed: {_reason(exc)}") from exc
            self.statistics.fsync_done(time.perf_counter() - started)
            if self._fd == fd:
                self._dir_dirty = False
            self._synced = max(self._synced, upto)

    async def sync_all(self) -> None:
        """fsync whatever was written (the ``interval`` mode's periodic flush); errors are logged."""
        if self._written > self._synced and self._fd is not None:
            try:
                await self.sync(self._written)
            except DataError:
                pass

    def rotate(self) -> tuple[int, int | None]:
        """Switch to a new segment now (no await: call it at a snapshot's cut, with the write gate closed).

        Returns ``(cut, old_fd)``: every record written from now on is in a segment numbered ``>= cut``,
        every record before in one numbered ``< cut``; pass ``old_fd`` to :meth:`retire` once outside the
        cut. Uses the segment from :meth:`prepare` when there is one. If no segment can be created, appends
        fail with DataError until one can.
        """
        old_fd, self._fd = self._fd, None
        prepared, self._prepared = self._prepared, None
        if prepared is not None and prepared[0] > self.segment:
            n, fd, head = prepared
            self._fd, self.segment, self._offset, self._dir_dirty = fd, n, head, True
            self.base = n
            return n, old_fd
        if prepared is not None:  # a segment was opened after it was prepared: it would replay out of order
            os.close(prepared[1])
            unlink_quietly(segment_path(self.directory, prepared[0]))
        cut = self.base = self._next
        try:
            self.open()
        except OSError as exc:
            log.error("cannot create journal segment %d: %s", cut, _reason(exc))
        return cut, old_fd

    async def retire(self, fd: int | None) -> None:
        """fsync and close a segment left by :meth:`rotate` (in a thread, after any fsync in progress)."""
        if fd is None:
            return
        async with self._lock:
            try:
                await trio.to_thread.run_sync(_fsync_close, fd)
            except OSError as exc:
                log.error("journal fsync of a retired segment failed: %s", _reason(exc))

    def _abandon(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
        self._fd = None

    async def aclose(self) -> None:
        async with self._lock:
            if self._prepared is not None:
                n, fd, _head = self._prepared
                self._prepared = None
                os.close(fd)
                unlink_quietly(segment_path(self.directory, n))
            if self._fd is not None:
                fd, self._fd = self._fd, None
                try:
                    await trio.to_thread.run_sync(_fsync_close, fd)
                except OSError as exc:
                    log.error("journal close failed: %s", _reason(exc))


def _create_segment(directory: str, n: int, base: int | None) -> tuple[int, int]:
    """Create ``journal-<n>.wal`` with its magic and header; returns ``(fd, bytes written)``."""
    path = segment_path(directory, n)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o644)
    try:
        head = JOURNAL_MAGIC + frame(pack({"format": JOURNAL_FORMAT, "kind": "journal", "segment": n, "base": base}))
        _write_all(fd, head)
    except OSError:
        os.close(fd)
        unlink_quietly(path)
        raise
    return fd, len(head)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _fsync(fd: int, directory: str | None) -> None:
    os.fsync(fd)
    if directory is not None:
        fsync_dir(directory)


def _fsync_close(fd: int) -> None:
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def unlink_quietly(path: str) -> None:
    """Remove ``path``; a file already gone is fine, any other failure is logged (never raised)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("cannot remove %s: %s", path, _reason(exc))


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)
