"""The forked snapshot writer stays out of the server's way: the child runs only when the server's core
is idle, and the parent keeps collecting young garbage (no full pass) while the child shares its pages."""

from __future__ import annotations

import gc
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from workerhub.hubstate import HubState
from workerhub.persistence import writer as writer_module
from workerhub.persistence.writer import SnapshotFailed, start_fork

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the fork writer needs os.fork")


def _empty() -> HubState:
    return HubState(0.0, [], [])


def _hangs(*_args: Any) -> Any:
    time.sleep(120)


@pytest.fixture
def thresholds() -> Any:
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 100)  # what the server runs with (gc_full_threshold)
    try:
        yield (700, 10, 100)
    finally:
        gc.set_threshold(*saved)


async def test_while_the_child_writes_young_passes_run_and_full_ones_wait(
    tmp_path: Path, thresholds: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_module, "write_snapshot", _hangs)
    child = start_fork(_empty, str(tmp_path), 1)
    try:
        assert gc.isenabled()  # young garbage is collected as usual: nothing piles up for one big pass
        young, middle, full = gc.get_threshold()
        assert (young, middle) == thresholds[:2]
        assert full > 10**6  # no full pass: it would write to (so copy) every page the child shares
    finally:
        child.kill()
    assert gc.get_threshold() == thresholds and gc.isenabled()
    child.kill()  # idempotent: nothing restored twice
    assert gc.get_threshold() == thresholds


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE") or sys.platform != "linux", reason="Linux scheduling policy")
async def test_the_child_runs_under_the_idle_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer_module, "write_snapshot", _hangs)
    child = start_fork(_empty, str(tmp_path), 1)
    try:
        for _ in range(500):  # the child sets its policy first thing; give it the moment it needs
            if os.sched_getscheduler(child.pid) == os.SCHED_IDLE:
                break
            time.sleep(0.01)
        assert os.sched_getscheduler(child.pid) == os.SCHED_IDLE
        assert os.sched_getscheduler(0) != os.SCHED_IDLE  # the server itself keeps its own
    finally:
        child.kill()


async def test_thresholds_come_back_after_a_finished_or_failed_write(tmp_path: Path, thresholds: Any) -> None:
    info = await start_fork(_empty, str(tmp_path), 1).wait()
    assert info.workers == 0
    assert gc.get_threshold() == thresholds

    def broken() -> HubState:
        raise RuntimeError("export failed")

    with pytest.raises(SnapshotFailed, match="export failed"):
        await start_fork(broken, str(tmp_path), 2).wait()
    assert gc.get_threshold() == thresholds
