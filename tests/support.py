"""Helpers shared by tests. Tests import helpers from here, never from another test module or conftest.

- Endpoint tests: the API clients the ``api`` fixture parametrizes (:class:`JsonApi`, :class:`MsgpackApi`,
  :class:`StreamApi`), a fixed interval-aligned epoch and one-line calls. Times: ``BASE_S`` is epoch
  **seconds**, aligned to 3600 (so to every interval used here); report timestamps are epoch
  **milliseconds** (``ms(offset_s)``), as ClearML agents send them.
- Stream tests: :class:`RawConn` (a bare socket speaking frames) and :func:`code`.
- In-process hub tests (persistence, properties): :func:`answers`.
- History property tests: the :func:`reports` strategy and :func:`ingest`.
"""

from __future__ import annotations

import inspect
import socket
from collections.abc import Callable
from typing import Any

import httpx
import msgpack
import pytest
from hypothesis import strategies as st

from workerhub.actors import Hub
from workerhub.client import Reply, StreamClient
from workerhub.errors import WorkerhubError
from workerhub.messages import ActivityQuery, Identity, StatsItem, StatsQuery
from workerhub.stats import WorkerHistory
from workerhub.stream import FrameDecoder
from workerhub.testing import ServerHandle

# --- endpoint tests: one API per transport and codec -----------------------------------------------------


class JsonApi:
    """Calls over HTTP with JSON bodies, as ClearML clients send them."""

    codec = "json"

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def call(self, name: str, body: Any = None, *, method: str = "POST", headers: dict | None = None) -> Reply:
        r = self.client.request(method, f"/{name}", json={} if body is None else body, headers=headers)
        assert r.headers["content-type"].startswith("application/json")
        return self._reply(r.status_code, r.json())

    @staticmethod
    def _reply(status: int, reply: dict[str, Any]) -> Reply:
        assert status == reply["meta"]["result_code"], "HTTP status must equal result_code"
        assert isinstance(reply["data"], dict), "data is always an object"
        return Reply(status, reply["meta"], reply["data"])

    def ok(self, name: str, body: Any = None) -> dict[str, Any]:
        """Call and assert success; returns ``data``."""
        reply = self.call(name, body)
        assert reply.ok, reply.meta
        return reply.data


def client_for(handle: ServerHandle) -> httpx.Client:
    """An HTTP client for ``handle`` (keep-alive, as the ClearML clients use)."""
    # verify=False: plain http on loopback, and it skips loading the CA bundle (~0.1 s per client)
    return httpx.Client(base_url=handle.url, timeout=10, verify=False)


class MsgpackApi(JsonApi):
    """The same calls with msgpack request bodies and replies (a workerhub extension to the wire)."""

    codec = "msgpack"
    MEDIA = "application/vnd.msgpack"

    def call(self, name: str, body: Any = None, *, method: str = "POST", headers: dict | None = None) -> Reply:
        content = msgpack.packb({} if body is None else body, use_bin_type=True)
        headers = {"Content-Type": self.MEDIA, "Accept": self.MEDIA, **(headers or {})}
        r = self.client.request(method, f"/{name}", content=content, headers=headers)
        assert r.headers["content-type"] == self.MEDIA, r.headers["content-type"]
        return self._reply(r.status_code, msgpack.unpackb(r.content, raw=False))


APIS = {"json": JsonApi, "msgpack": MsgpackApi}


class StreamApi:
    """Calls over the native msgpack stream (one persistent connection per test), same interface as JsonApi."""

    def __init__(self, client: StreamClient) -> None:
        self.client = client

    def call(self, name: str, body: Any = None, *, method: str = "POST", headers: dict | None = None) -> Reply:
        if method != "POST" or headers:
            pytest.skip("HTTP methods and headers have no stream equivalent")
        r = self.client.call(name, body)
        assert isinstance(r.data, dict), "data is always an object"
        return Reply(r.status, r.meta, r.data)

    def ok(self, name: str, body: Any = None) -> dict[str, Any]:
        """Call and assert success; returns ``data``."""
        reply = self.call(name, body)
        assert reply.ok, reply.meta
        return reply.data


# --- stream tests: raw frames ---------------------------------------------------------------------------


class RawConn:
    """A bare socket speaking frames, to send what a well-behaved client never would."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("msgpack://").rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.decoder = FrameDecoder(limit=1 << 30)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def replies(self, n: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while len(out) < n:
            out += [msgpack.unpackb(f, raw=False) for f in self.decoder.frames()]
            if len(out) >= n:
                break
            data = self.sock.recv(65536)
            assert data, f"connection closed after {len(out)} of {n} replies"
            self.decoder.feed(data)
        return out

    def closed(self) -> bool:
        """True once the server has closed its side (after any replies already read)."""
        return self.sock.recv(1) == b""


def code(reply: dict[str, Any]) -> tuple[int, int]:
    """``(result_code, result_subcode)`` of a raw reply map."""
    return reply["meta"]["result_code"], reply["meta"]["result_subcode"]


# --- endpoint tests: an epoch and one-line calls ---------------------------------------------------------

BASE_S = 1_699_999_200
"""2023-11-14T22:00:00Z: a multiple of 3600 s, so buckets of 10, 60 or 3600 s start exactly here."""


def ms(offset_s: float = 0) -> int:
    """Epoch ms of ``BASE_S + offset_s``."""
    return round((BASE_S + offset_s) * 1000)


def report(
    api: JsonApi, worker: str, ts_ms: int, machine_stats: dict[str, Any] | None = None, **fields: Any
) -> None:
    """One successful status_report."""
    body: dict[str, Any] = {"worker": worker, "timestamp": ts_ms, **fields}
    if machine_stats is not None:
        body["machine_stats"] = machine_stats
    assert api.ok("workers.status_report", body) == {}


def get_stats(
    api: JsonApi,
    items: list[dict[str, Any]] | str,
    *,
    start: float = -3600,
    end: float = 3600,
    interval: int = 60,
    **fields: Any,
) -> list[dict[str, Any]]:
    """get_stats over ``[BASE_S + start, BASE_S + end]``; ``items`` may be a single key (avg)."""
    if isinstance(items, str):
        items = [{"key": items}]
    body = {
        "from_date": BASE_S + start,
        "to_date": BASE_S + end,
        "interval": interval,
        "items": items,
        **fields,
    }
    return api.ok("workers.get_stats", body)["workers"]


def activity(api: JsonApi, *, start: float = -3600, end: float = 3600, interval: int = 60) -> dict[str, Any]:
    body = {"from_date": BASE_S + start, "to_date": BASE_S + end, "interval": interval}
    return api.ok("workers.get_activity_report", body)


def workers(api: JsonApi, last_seen: Any = 0) -> dict[str, dict[str, Any]]:
    """get_all as ``{id: worker}`` (no activity filter by default)."""
    listed = api.ok("workers.get_all", {"last_seen": last_seen})["workers"]
    return {w["id"]: w for w in listed}


def worker_ids(api: JsonApi, **body: Any) -> list[str]:
    return [w["id"] for w in api.ok("workers.get_all", body)["workers"]]


# --- in-process hub tests --------------------------------------------------------------------------------




HUB_T0 = 1_700_000_000.0
"""Wall time (epoch **seconds**) the in-process hubs of the snapshot and persistence tests start at."""
IDENTITIES = [Identity("c1", "u1"), Identity("c1", "u2"), Identity("c2", "u1", "Company 2", "User 1")]
METRICS = ["cpu_usage", "gpu_usage", "memory_used", "network_rx"]


async def answers(hub: Hub) -> dict[str, Any]:
    """Every query's answer (or error class) for every identity in :data:`IDENTITIES`, at the hub's current
    time, over the metrics :data:`METRICS` around :data:`HUB_T0`: two hubs that hold the same state answer
    the same."""
    out: dict[str, Any] = {}

    async def ask(key: str, fn: Callable[[], Any]) -> None:
        try:
            got = fn()
            out[key] = await got if inspect.isawaitable(got) else got
        except WorkerhubError as exc:
            out[key] = type(exc).__name__

    lo, hi = HUB_T0 - 8000, HUB_T0 + 8000
    for ident in IDENTITIES:
        who = f"{ident.company}/{ident.user}"
        await ask(f"get_all {who}", lambda ident=ident: hub.get_all(0, identity=ident))
        await ask(f"get_all 60 {who}", lambda ident=ident: hub.get_all(60, identity=ident))
        await ask(f"keys {who}", lambda ident=ident: hub.get_metric_keys(identity=ident))
        await ask(f"keys a {who}", lambda ident=ident: hub.get_metric_keys(("a",), identity=ident))
        for interval in (10, 600):
            for split in (False, True):
                items = tuple(StatsItem(m, agg) for m in METRICS for agg in ("avg", "min", "max"))
                query = StatsQuery(lo, hi, interval, items, split_by_variant=split)
                await ask(
                    f"stats {interval} {split} {who}",
                    lambda query=query, ident=ident: hub.get_stats(query, identity=ident),
                )
        await ask(
            f"activity {who}",
            lambda ident=ident: hub.get_activity_report(ActivityQuery(lo, hi, 300), identity=ident),
        )
    return out


# --- history property tests ------------------------------------------------------------------------------

T0_MS = 1_700_000_000_000 - 1_700_000_000_000 % 86_400_000
"""A UTC midnight, epoch **milliseconds**: where :func:`reports` starts."""
SPAN_MS = 3 * 86_400_000
"""How far :func:`reports` spreads its reports: three days, so both tiers and day boundaries are crossed."""

VALUES = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
_SAMPLE = st.tuples(
    st.sampled_from(["cpu_usage", "gpu_usage", "memory_used"]), st.sampled_from(["0", "1", "total"]), VALUES
)
_JUMPS_MS = [10_000, 10_000, 70_000, 600_000, 3_600_000, 20 * 3_600_000, -700_000, -5 * 3_600_000]


@st.composite
def reports(draw: st.DrawFn) -> list[tuple[str, int, bool, list[tuple[str, str, float]]]]:
    """``(worker, ts_ms, running a task, samples)`` reports, out of order, over ``[T0_MS, T0_MS + SPAN_MS]``."""
    n = draw(st.integers(1, 40))
    out = []
    t = T0_MS + draw(st.integers(0, SPAN_MS // 2))
    for _ in range(n):
        jump = draw(st.sampled_from(_JUMPS_MS))
        t = min(max(T0_MS, t + jump + draw(st.integers(0, 999))), T0_MS + SPAN_MS)
        samples = draw(st.lists(_SAMPLE, min_size=1, max_size=5, unique_by=lambda s: (s[0], s[1])))
        out.append((draw(st.sampled_from(["a", "b", "c"])), t, draw(st.booleans()), samples))
    return out


def ingest(reps: list[Any], written: float = 0.0) -> dict[str, WorkerHistory]:
    """One :class:`WorkerHistory` per worker fed ``reps`` in order, checked after every report."""
    hs: dict[str, WorkerHistory] = {}
    for k, (w, ts, task, samples) in enumerate(reps):
        h = hs.setdefault(w, WorkerHistory())
        h.add(ts, task, samples, written_at=written + k)
        h._check()
    return hs
