"""WorkerState.to_wire caches its static part and ISO strings: every change must still show."""

from __future__ import annotations

from dataclasses import replace

from workerhub.actors.worker import WorkerState, iso
from workerhub.messages import Identity


def _reference(st: WorkerState, now: float) -> dict:
    """to_wire built from scratch, without any cache (the definition, spec §5)."""
    ident = st.identity
    out: dict = {
        "id": st.id,
        "key": f"worker_{ident.company}_{ident.user}_{st.id}",
        "user": {"id": ident.user, "name": ident.user_name or ident.user},
        "company": {"id": ident.company, "name": ident.company_name or ident.company},
        "ip": st.ip,
        "register_time": iso(st.register_time),
        "register_timeout": st.register_timeout,
        "last_activity_time": iso(st.last_activity_time),
    }
    if st.last_report_time is not None:
        out["last_report_time"] = iso(st.last_report_time)
    if st.task is not None:
        since = st.task_since if st.task_since is not None else now
        out["task"] = {"id": st.task, "running_time": max(0, int((now - since) * 1000))}
    out["queues"] = [{"id": q} for q in st.queues]
    if st.queue is not None and st.queue in st.queues:
        out["queue"] = {"id": st.queue}
    if st.tags is not None:
        out["tags"] = list(st.tags)
    return out


def test_to_wire_follows_every_mutation() -> None:
    st = WorkerState("w1", Identity("c", "u"), "10.0.0.1", 600, 1_700_000_000.0, 1_700_000_000.0, queues=["q"])
    now = 1_700_000_010.5

    def check() -> None:
        got = st.to_wire(now)
        want = _reference(st, now)
        assert got == want and list(got) == list(want)  # same fields, same order
        got["queues"].append({"id": "mutated by a caller"})
        got["ip"] = "mutated"
        assert st.to_wire(now) == want  # callers get a fresh dict each time

    check()
    check()  # from the cache
    st.ip = "10.0.0.2"
    check()
    st.last_activity_time = st.last_report_time = 1_700_000_005.25
    check()
    st.last_activity_time = 1_700_000_007.0
    check()
    st.task, st.task_since, st.queue, st.tags = "t1", 1_700_000_006.0, "q", ("a",)
    check()
    st.queues = ["p"]
    check()
    st.identity = Identity("c", "u2", "Co", "User 2")
    check()
    st.register_time, st.register_timeout = 1_700_000_001.0, 30
    check()
    fresh = replace(st, register_time=1_700_000_002.0)
    assert fresh.to_wire(now) == _reference(fresh, now)
