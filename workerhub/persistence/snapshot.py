"""Snapshot files: the whole hub state at one cut, written atomically, read back or refused whole.

Layout (see :mod:`.format` for frames)::

    SNAPSHOT_MAGIC
    frame {"format", "kind": "snapshot", "created_at", "workerhub", "journal", "workers", "histories"}
    frame ["worker", [company, user, company_name, user_name], {registration fields}, expires_at]   * workers
    frame ["history", company, worker_id, {"series", "chunks", "days", ...}]   * histories (workerhub.stats.state)
    frame ["end", number of frames before it]

``created_at`` is the hub's wall time of the cut (epoch s); ``journal`` is the first journal segment whose
records are *not* in the snapshot. A missing ``end`` frame means the file is truncated.

Writing is atomic: temp file, fsync, rename over the old snapshot, fsync of the directory; a crash at any
point leaves either the old snapshot or the new one, never a mix. All functions here block: run them in a
worker thread or a forked child (:mod:`.writer`).

Before the temp file replaces the old snapshot it is read back from the disk and verified
(:func:`verify_snapshot`: every frame's checksum, every record decoded, every array's size checked against
its shape and dtype, the frame counts), so a bad snapshot never replaces a good one and the journal segments
it covers are never deleted for it.
"""

from __future__ import annotations

import gc
import logging
import mmap
import os
import queue
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from ..hubstate import HubState, SavedWorker
from ..messages import Identity
from ..stats import WorkerHistory
from ..stats.state import load_state
from .format import (
    SNAPSHOT_FORMAT,
    SNAPSHOT_MAGIC,
    CorruptFrame,
    PersistenceError,
    TornTail,
    check_format,
    frame,
    frame_head,
    pack,
    scan_frames,
    unpack,
)
from .journal import fsync_dir

__all__ = [
    "SNAPSHOT_NAME",
    "SnapshotInfo",
    "inspect_snapshot",
    "read_snapshot",
    "verify_snapshot",
    "write_snapshot",
]

SNAPSHOT_NAME = "snapshot.msgpack"

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """What one snapshot write cost: file ``size`` in bytes, ``seconds`` to encode and write it."""

    path: str
    size: int
    seconds: float
    workers: int
    histories: int
    wall: float
    """the hub's wall time (epoch s) at the cut"""


def _version() -> str:
    from .. import __version__  # late: the package imports the server, which imports this module

    return __version__


def _worker_fields(w: SavedWorker) -> dict[str, Any]:
    return {
        "id": w.id,
        "ip": w.ip,
        "register_timeout": w.register_timeout,
        "register_time": w.register_time,
        "last_activity_time": w.last_activity_time,
        "last_report_time": w.last_report_time,
        "queues": list(w.queues),
        "queue": w.queue,
        "task": w.task,
        "task_since": w.task_since,
        "tags": None if w.tags is None else list(w.tags),
        "system_tags": None if w.system_tags is None else list(w.system_tags),
    }


def _saved_worker(identity: list[str], f: dict[str, Any], expires_at: float) -> SavedWorker:
    return SavedWorker(
        identity=Identity(*identity),
        id=f["id"],
        ip=f["ip"],
        register_timeout=f["register_timeout"],
        register_time=f["register_time"],
        last_activity_time=f["last_activity_time"],
        last_report_time=f["last_report_time"],
        queues=tuple(f["queues"]),
        queue=f["queue"],
        task=f["task"],
        task_since=f["task_since"],
        tags=None if f["tags"] is None else tuple(f["tags"]),
        system_tags=None if f.get("system_tags") is None else tuple(f["system_tags"]),  # format 2: absent
        expires_at=float(expires_at),
    )


INCREMENTAL_SYNC_BYTES = 32 << 20
"""fdatasync the snapshot every this many bytes while writing it.

Why: without it a 1.7 GB snapshot piles up dirty pages until the kernel throttles *every* writer on the
device, the journal's small inline writes included, and its final fsync (and any journal fsync queued behind
it) flushes them all at once: request latency spikes of seconds. Syncing as it goes keeps the dirty set
small (Redis does the same with rdb-save-incremental-fsync, every 4 MB).
"""


class _SyncingWriter:
    __slots__ = ("_f", "_pending")

    def __init__(self, f: Any) -> None:
        self._f = f
        self._pending = 0

    def write(self, data: bytes) -> None:
        self._f.write(data)
        self._pending += len(data)
        if self._pending >= INCREMENTAL_SYNC_BYTES:
            self._f.flush()
            os.fdatasync(self._f.fileno())
            self._pending = 0


def write_snapshot(directory: str, state: HubState, journal_cut: int) -> SnapshotInfo:
    """Write ``state`` (as exported: histories frozen) to ``directory/snapshot.msgpack`` atomically."""
    started = time.perf_counter()
    path = os.path.join(directory, SNAPSHOT_NAME)
    tmp = path + ".tmp"
    header = {
        "format": SNAPSHOT_FORMAT,
        "kind": "snapshot",
        "created_at": state.wall,
        "workerhub": _version(),
        "journal": journal_cut,
        "workers": len(state.workers),
        "histories": len(state.histories),
    }
    try:
        with open(tmp, "wb", buffering=1 << 20) as f:
            out = _SyncingWriter(f)
            out.write(SNAPSHOT_MAGIC)
            out.write(frame(pack(header)))
            frames = 0
            for w in state.workers:
                ident = w.identity
                who = [ident.company, ident.user, ident.company_name, ident.user_name]
                out.write(frame(pack(["worker", who, _worker_fields(w), w.expires_at])))
                frames += 1
            for company, worker_id, history in state.histories:
                payload = pack(["history", company, worker_id, history.to_state()])
                out.write(frame_head(payload))
                out.write(payload)
                frames += 1
            out.write(frame(pack(["end", frames])))
            f.flush()
            os.fsync(f.fileno())
            size = f.tell()
            # Drop the file's pages from the cache so that the verification below reads what the disk holds,
            # not what we meant to write (and so a big snapshot does not evict the server's working set).
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        verify_snapshot(tmp, journal_cut=journal_cut)
        os.replace(tmp, path)
        fsync_dir(directory)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return SnapshotInfo(
        path, size, time.perf_counter() - started, len(state.workers), len(state.histories), state.wall
    )


_WHAT_TO_DO = (
    "restore it from a backup, or move it out of the data directory to start without it "
    "(its data is then lost; the journal holds only what came after it)"
)


def _scan(path: str, keep: bool) -> tuple[dict[str, Any], HubState]:
    """Read every frame of ``path``, checked and decoded; histories rebuilt when ``keep``, else only
    validated (shapes, dtypes, orders) and dropped, so a verification holds one history at a time."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < len(SNAPSHOT_MAGIC):
                raise PersistenceError(f"{path}: not a workerhub snapshot; {_WHAT_TO_DO}")
            # Mapped read-only (MAP_SHARED, PROT_READ: nothing can write through it) rather than read(): the
            # frames are checked and decoded straight from the page cache, with no copy of the file in this
            # process. Decoding copies each array's bytes out once (msgpack ``bin`` -> ``bytes``), and the
            # loaded arrays are views of those (stats/state.py), so no array refers to the mapping: it is
            # closed below and the file is free to be replaced by the next snapshot.
            try:
                mapped: mmap.mmap | None = mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ)
            except OSError as exc:  # a file system that cannot map files: read it whole instead
                log.info("%s cannot be mapped (%s): reading it into memory", path, exc.strerror)
                mapped = None
                data = f.read()
        if mapped is None:
            return _scan_view(path, data, keep)
        try:
            return _scan_view(path, mapped, keep)
        finally:
            _close(mapped)
    except TornTail as torn:
        raise PersistenceError(f"{path}: snapshot is truncated at byte {torn.offset}; {_WHAT_TO_DO}") from torn
    except CorruptFrame as bad:
        raise PersistenceError(f"{path}: snapshot is damaged at byte {bad.offset}; {_WHAT_TO_DO}") from bad
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise PersistenceError(f"{path}: snapshot cannot be decoded ({exc}); {_WHAT_TO_DO}") from exc


_UNMAP_EVERY = 32 << 20
"""While scanning, drop the pages already read from this process's mapping every this many bytes, so the
file never shows in its RSS more than this at once (they stay in the page cache: this is not a read-ahead
hint, just accounting a memory limit or an operator looking at RSS would otherwise see double)."""
_DONTNEED: int | None = getattr(mmap, "MADV_DONTNEED", None)


_AHEAD = 16
"""Frames the checksum thread of a load may be ahead of the decoder (a history frame is ~1 MB)."""
_AHEAD_SWITCH = 0.0005
"""The interpreter's thread switch interval (s) while a load runs its checksum thread: the thread needs the
GIL for a moment between two frames, and the decoder holds it; at the default 5 ms it would wait that long
for every frame, and fall behind."""


_switch_lock = threading.Lock()
_switch_users = 0
_switch_saved = 0.0


def _short_switch(delta: int) -> None:
    """Shorten the switch interval while any load runs (+1 when one starts, -1 when it ends); the setting is
    process-wide, so loads running at once (embedded servers) restore it only when the last one ends."""
    global _switch_users, _switch_saved
    with _switch_lock:
        if delta > 0 and _switch_users == 0:
            _switch_saved = sys.getswitchinterval()
            sys.setswitchinterval(min(_switch_saved, _AHEAD_SWITCH))
        _switch_users += delta
        if delta < 0 and _switch_users == 0:
            sys.setswitchinterval(_switch_saved)


@contextmanager
def _checked_ahead(view: memoryview, offset: int) -> Iterator[Iterator[tuple[int, memoryview]]]:
    """:func:`.format.scan_frames` with the checksums computed by a helper thread, up to :data:`_AHEAD`
    frames ahead: ``zlib.crc32`` releases the GIL, so on a second core it overlaps the decoding (a third of
    a load's CPU time is the checksums: 1.5 GB/s). Same frames, same order, same exceptions, raised where
    the frame would have been."""
    handoff: queue.Queue[tuple[int, memoryview] | BaseException | None] = queue.Queue(_AHEAD)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in scan_frames(view, offset):
                if stop.is_set():
                    item[1].release()
                    return
                handoff.put(item)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            handoff.put(exc)
            return
        handoff.put(None)

    def consume() -> Iterator[tuple[int, memoryview]]:
        while (item := handoff.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item

    _short_switch(+1)
    helper = threading.Thread(target=produce, name="snapshot-checksums", daemon=True)
    helper.start()
    try:
        yield consume()
    finally:
        stop.set()
        while helper.is_alive():  # unblock a full queue, and release what is left in it
            try:
                item = handoff.get(timeout=0.05)
            except queue.Empty:
                continue
            if isinstance(item, tuple):
                item[1].release()
        helper.join()
        _short_switch(-1)
        while not handoff.empty():  # what a finished helper left behind the decoder's error
            item = handoff.get_nowait()
            if isinstance(item, tuple):
                item[1].release()


def _scan_view(path: str, mapped: mmap.mmap | bytes, keep: bool) -> tuple[dict[str, Any], HubState]:
    with memoryview(mapped) as view, ExitStack() as stack:
        if view[: len(SNAPSHOT_MAGIC)] != SNAPSHOT_MAGIC:
            raise PersistenceError(f"{path}: not a workerhub snapshot; {_WHAT_TO_DO}")
        # A load checks checksums in a helper thread; a verification (the writer's read-back, in a forked
        # child or beside a serving event loop) keeps to one thread and the interpreter's settings.
        start = len(SNAPSHOT_MAGIC)
        frames_in = stack.enter_context(_checked_ahead(view, start)) if keep else scan_frames(view, start)
        header: dict[str, Any] | None = None
        state = HubState(0.0, [], [])
        frames = workers = histories = 0
        ended = False
        dropped = 0  # bytes of the mapping already handed back
        page = mmap.PAGESIZE
        for offset, payload in frames_in:
            with payload:
                item = unpack(payload)
            if offset - dropped >= _UNMAP_EVERY and isinstance(mapped, mmap.mmap) and _DONTNEED is not None:
                upto = offset - offset % page
                mapped.madvise(_DONTNEED, dropped, upto - dropped)
                dropped = upto
            if ended:
                raise PersistenceError(f"{path}: data after the end frame at byte {offset}; {_WHAT_TO_DO}")
            if header is None:
                header = check_format(item, path, "snapshot")
                state.wall = float(header["created_at"])
                continue
            kind = item[0]
            if kind == "worker":
                _, who, fields, expires_at = item
                saved = _saved_worker(who, fields, expires_at)
                workers += 1
                if keep:
                    state.workers.append(saved)
            elif kind == "history":
                _, company, worker_id, hist = item
                histories += 1
                if keep:
                    state.histories.append((str(company), str(worker_id), WorkerHistory.from_state(hist)))
                else:
                    load_state(hist)
            elif kind == "end":
                if item[1] != frames:
                    raise PersistenceError(f"{path}: {frames} records but the end frame says {item[1]}")
                ended = True
                continue
            else:
                raise ValueError(f"unknown record kind {kind!r} at byte {offset}")
            frames += 1
    if header is None or not ended:
        raise PersistenceError(f"{path}: snapshot is truncated (no end frame); {_WHAT_TO_DO}")
    if (header.get("workers"), header.get("histories")) != (workers, histories):
        raise PersistenceError(
            f"{path}: the header announces {header.get('workers')} workers and {header.get('histories')} "
            f"histories, the file holds {workers} and {histories}; {_WHAT_TO_DO}"
        )
    return header, state


def _close(mapped: mmap.mmap) -> None:
    try:
        mapped.close()
    except BufferError:  # a slice still exported (an exception's traceback holds it): unmapped when dropped
        log.debug("snapshot mapping still referenced; it is unmapped when the last reference goes")


def read_snapshot(path: str) -> tuple[dict[str, Any], HubState]:
    """The header and state of a snapshot file, histories rebuilt; PersistenceError if it is unusable.

    Nothing is ever repaired or skipped: a snapshot is used whole or the start stops with the reason.
    The cyclic collector is paused meanwhile: the load allocates only live objects (~100 per history), and
    the passes their count would trigger found nothing to free (measured: 20 % of a 1,000 x 24 h load).
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        return _scan(path, keep=True)
    finally:
        if paused:
            gc.enable()


def verify_snapshot(path: str, *, journal_cut: int | None = None) -> dict[str, Any]:
    """Read ``path`` back and check all of it without keeping it; returns its header.

    Raises PersistenceError naming the first problem: a checksum, a record that does not decode, an array
    whose size does not match its shape and dtype, a missing end frame, counts that disagree with the
    header, or (``journal_cut``) a header naming another journal cut.
    """
    header, _ = _scan(path, keep=False)
    if journal_cut is not None and header.get("journal") != journal_cut:
        raise PersistenceError(
            f"{path}: written for journal cut {journal_cut} but its header says {header.get('journal')}"
        )
    return header


def inspect_snapshot(path: str) -> dict[str, Any]:
    """A summary of a snapshot file: format, versions, workers, series, samples, time range (ms)."""
    header, state = read_snapshot(path)
    series = samples = reports = 0
    lo: int | None = None
    hi: int | None = None
    for _company, _worker_id, history in state.histories:
        series += len(history.counts)
        samples += sum(history.counts.values())
        reports += len(history)
        ts, _task = history.rows(-(2**62), 2**62)
        if len(ts):
            lo = int(ts[0]) if lo is None else min(lo, int(ts[0]))
            hi = int(ts[-1]) if hi is None else max(hi, int(ts[-1]))
    return {
        "file": path,
        "size_bytes": os.path.getsize(path),
        "format": header["format"],
        "workerhub": header.get("workerhub"),
        "created_at": header["created_at"],
        "journal_from_segment": header.get("journal"),
        "workers": len(state.workers),
        "histories": len(state.histories),
        "series": series,
        "reports": reports,
        "samples": samples,
        "first_ms": lo,
        "last_ms": hi,
    }
