"""Who writes a snapshot: a forked child (the default) or a worker thread (the fallback).

**fork** (as Redis' BGSAVE): at the cut, with mutations held at the gate, the event loop calls
:func:`start_fork`, which forks at once, synchronously. The child's copy-on-write image *is* the state at
the journal position of the cut: nothing the parent does afterwards (a write, a read that widens an array,
a retention trim) can reach it. The child exports the state from its own image, encodes, writes the temp
file, fsyncs, reads it back and verifies it, renames it into place, fsyncs the directory and exits 0; any
failure exits 1 with the reason on a pipe. Encoding runs on another core, off the server's GIL.

**thread**: the cut is :meth:`Persisted.export_state` (frozen views that hold their own references to the
arrays of the cut, never the live chunk objects), encoded in a worker thread. Reads cannot reach the copy,
but the encoder shares the GIL with requests.

Either way the result is a :class:`SnapshotInfo` or :class:`SnapshotFailed` with the reason.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import warnings
from collections.abc import Callable
from typing import Any

import trio

from ..hubstate import HubState
from .format import pack, unpack
from .snapshot import SnapshotInfo, write_snapshot

__all__ = ["ForkedWrite", "SnapshotFailed", "fork_available", "start_fork", "write_in_thread"]

log = logging.getLogger(__name__)


class SnapshotFailed(Exception):
    """A snapshot could not be written or did not verify; the message says why. Nothing was replaced."""


def fork_available() -> bool:
    return hasattr(os, "fork")


class ForkedWrite:
    """A snapshot being written by child ``pid``, which reports on the pipe ``fd`` and then exits."""

    __slots__ = ("_done", "_fd", "_full_passes", "pid")

    def __init__(self, pid: int, fd: int, full_passes: _FullPassesHeld) -> None:
        self.pid = pid
        self._fd = fd
        self._full_passes = full_passes
        self._done = False

    async def wait(self) -> SnapshotInfo:
        """The child's result, without blocking the event loop; SnapshotFailed if it failed. If the wait is
        cancelled (server stopping), the child is killed: a half-written temp file never replaces anything."""
        try:
            report = b""
            async with trio.lowlevel.FdStream(self._fd) as stream:
                self._fd = -1  # owned by the stream now
                while chunk := await stream.receive_some(1 << 16):
                    report += chunk
            status = await self._reap()
        finally:
            if not self._done:
                self._kill()  # synchronous: SIGKILL and reap take no time
            self._full_passes.release()
        return _result(report, status)

    async def _reap(self) -> int:
        # The pipe is at EOF: the child closed it by exiting, so this wait is over in microseconds. (Not a
        # poll with trio.sleep: that would hang on a MockClock that only moves when told to.)
        _pid, status = await trio.to_thread.run_sync(os.waitpid, self.pid, 0)
        self._done = True
        return status

    def kill(self) -> None:
        """Kill and reap the child if it is still running (idempotent; synchronous: takes no time)."""
        if not self._done:
            self._kill()
        self._full_passes.release()

    def _kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)  # returns at once after SIGKILL
        except (ProcessLookupError, ChildProcessError):
            pass
        self._done = True
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class _FullPassesHeld:
    """No full (generation 2) collection in this process until :meth:`release`; young ones go on.

    A full pass writes to the GC header of every tracked object it walks, which would copy each page of
    the state that the child still shares. The young generations hold what was allocated since the last
    pass (new objects, on pages already the parent's own), so they keep running: pausing them too (as
    ``gc.disable()`` did) let everything allocated during the write (every new worker's actor, for one)
    pile up in generation 0 for one pass to walk at once after it. Thresholds are process-wide: the
    previous ones are put back exactly.
    """

    __slots__ = ("_saved",)

    def __init__(self) -> None:
        self._saved: tuple[int, int, int] | None = gc.get_threshold()
        young, middle, _full = self._saved
        gc.set_threshold(young, middle, _NO_FULL_PASS)

    def release(self) -> None:
        if self._saved is not None:
            gc.set_threshold(*self._saved)
            self._saved = None


_NO_FULL_PASS = 1 << 30
"""A generation 2 threshold that is never reached: the number of generation 1 passes it waits for."""


def _yield_to_the_server() -> None:
    """Make the calling (child) process run only when the server does not need the core.

    The child shares the server's cores (and its CPU affinity). Under ``SCHED_IDLE`` a runnable server
    thread preempts it at once, so a request never waits behind the encoder; it still progresses on every
    idle moment (at half the max rate, half of a core). Where that policy is missing, niceness 19.
    """
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        return
    except (AttributeError, OSError):
        pass
    try:
        os.nice(19)
    except OSError:
        pass  # not allowed here: the child runs at the server's priority


def start_fork(export: Callable[[], HubState], directory: str, cut: int) -> ForkedWrite:
    """Fork a child that writes ``export()`` (called in the child) as the snapshot for journal ``cut``.

    Call it synchronously at the cut. The parent runs no full GC pass until the child is reaped
    (:class:`_FullPassesHeld`). (Not ``gc.freeze()``: a freeze is permanent, so every garbage cycle alive
    at the cut would then never be collected; and ``gc.unfreeze()`` would also release what the start
    froze.)
    """
    r, w = os.pipe()
    full_passes = _FullPassesHeld()
    with warnings.catch_warnings():
        # Python >= 3.12 warns that a multi-threaded process forks; the child touches no lock another
        # thread may hold (no logging, no trio, no imports), it encodes, writes a file and exits.
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            pid = os.fork()
        except OSError:
            os.close(r)
            os.close(w)
            full_passes.release()
            raise
    if pid == 0:  # pragma: no cover - the child; its outcome is checked through the parent
        _child(export, directory, cut, r, w)
    os.close(w)
    return ForkedWrite(pid, r, full_passes)


def _child(export: Callable[[], HubState], directory: str, cut: int, r: int, w: int) -> None:  # pragma: no cover
    code = 1
    gc.disable()  # the child frees what it makes by reference counting and exits: a collection only costs
    try:
        _yield_to_the_server()
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, signal.SIG_DFL)  # Ctrl-C or a stop kills the child; the parent retries
            signal.set_wakeup_fd(-1)
        except ValueError:
            pass  # not the main thread (an embedded server): the parent's handlers stay inert here
        # Keep nothing of the parent's open: listening sockets, client connections and the journal must
        # not stay open (a closed connection would not be seen closed by its client) while this runs.
        os.close(r)
        os.closerange(3, w)
        os.closerange(w + 1, _max_fd())
        info = write_snapshot(directory, export(), cut)
        report: dict[str, Any] = {
            "ok": True, "path": info.path, "size": info.size, "seconds": info.seconds,
            "workers": info.workers, "histories": info.histories, "wall": info.wall,
        }
        code = 0
    except BaseException as exc:  # noqa: BLE001 - everything becomes the exit status and the reason
        report = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    finally:
        try:
            data = pack(report)
            view = memoryview(data)
            while view:
                view = view[os.write(w, view):]
        except BaseException:  # noqa: BLE001, S110 - no one to tell: the exit status still tells the parent
            pass
        os._exit(code)


def _max_fd() -> int:
    try:
        return os.sysconf("SC_OPEN_MAX")
    except (ValueError, OSError):
        return 65536


def _result(report: bytes, status: int) -> SnapshotInfo:
    try:
        parsed = unpack(report) if report else {}
    except ValueError:
        parsed = {}
    if not isinstance(parsed, dict):
        parsed = {}
    if os.WIFSIGNALED(status):
        raise SnapshotFailed(f"the snapshot child was killed by signal {os.WTERMSIG(status)}")
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
    if code != 0 or not parsed.get("ok"):
        reason = parsed.get("error") or "no reason reported"
        raise SnapshotFailed(f"the snapshot child exited with status {code}: {reason}")
    return SnapshotInfo(
        str(parsed["path"]), int(parsed["size"]), float(parsed["seconds"]),
        int(parsed["workers"]), int(parsed["histories"]), float(parsed["wall"]),
    )


async def write_in_thread(state: HubState, directory: str, cut: int) -> SnapshotInfo:
    """Write an exported ``state`` in a worker thread; SnapshotFailed with the reason on any failure."""
    try:
        return await trio.to_thread.run_sync(write_snapshot, directory, state, cut)
    except Exception as exc:
        raise SnapshotFailed(f"{type(exc).__name__}: {exc}") from exc
