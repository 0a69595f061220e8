"""Prometheus metrics of one hub, in a private registry (no process-global state: two servers in one
process, as in tests, never mix their figures).

Request counters and latencies are recorded once per call in the shared dispatch path, so HTTP and the
msgpack stream count alike. Everything the hub and the store hold is read at scrape time by a collector:
nothing is kept twice, and an idle server pays nothing. Metric names: docs/operations.md.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from itertools import accumulate
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

from ..stats.footprint import retention_footprint
from ..storestats import FSYNC_BUCKETS
from .probes import store_statistics

if TYPE_CHECKING:
    from ..actors.hub import Hub

__all__ = ["CONTENT_TYPE", "LATENCY_BUCKETS", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
"""The text exposition format every Prometheus version scrapes."""

LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
"""Upper bounds (s) of the request latency histogram: a status_report takes tens of µs, a 30-day
split_by_variant get_stats over a large fleet up to seconds."""


class Metrics:
    """The hub's registry: what requests did (recorded as they finish) and what the hub holds (collected)."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self.registry = CollectorRegistry()
        self._stream_open = Gauge(
            "workerhub_stream_connections_open", "msgpack stream connections open now", registry=self.registry
        )
        self._stream_total = Counter(
            "workerhub_stream_connections", "msgpack stream connections accepted", registry=self.registry
        )
        # Requests are counted in plain dicts and exposed at scrape time (_RequestCollector): prometheus_client's
        # Counter.inc and Histogram.observe take a lock each, ~5 µs of a ~45 µs stream status_report
        # (bench/profile_status_report.py). Both run on the event loop's thread, so no lock is needed here.
        self._counts: dict[tuple[str, int], list[float]] = {}  # (call, code) -> [count, created]
        self._latencies: dict[str, list[float]] = {}  # call -> per-bucket counts (+Inf last), sum, created
        self.registry.register(_RequestCollector(self._counts, self._latencies))
        self.registry.register(_HubCollector(hub))

    def observe(self, call: str, code: int, seconds: float) -> None:
        """Record one answered call (``code`` is the reply's result_code)."""
        count = self._counts.get((call, code))
        if count is None:
            count = self._counts[(call, code)] = [0, time.time()]
        count[0] += 1
        latency = self._latencies.get(call)
        if latency is None:
            latency = self._latencies[call] = [0] * (len(LATENCY_BUCKETS) + 1) + [0.0, time.time()]
        latency[bisect_left(LATENCY_BUCKETS, seconds)] += 1  # the first bucket whose bound is >= seconds
        latency[-2] += seconds

    @contextmanager
    def stream_connection(self) -> Iterator[None]:
        """Count a stream connection for as long as the block runs."""
        self._stream_total.inc()
        self._stream_open.inc()
        try:
            yield
        finally:
            self._stream_open.dec()

    def render(self) -> bytes:
        """The registry in the Prometheus text format (:data:`CONTENT_TYPE`), plus the fleet gauges when on."""
        body = generate_latest(self.registry)
        if self._hub.settings.metrics_fleet:
            body += _fleet_text(self._hub)
        return body


class _RequestCollector(Collector):
    """``workerhub_requests`` and ``workerhub_request_duration_seconds`` from :class:`Metrics`' counts."""

    def __init__(self, counts: dict[tuple[str, int], list[float]], latencies: dict[str, list[float]]) -> None:
        self._counts = counts
        self._latencies = latencies

    def collect(self) -> Iterable[Metric]:
        requests = CounterMetricFamily(
            "workerhub_requests", "Calls answered, by call name and result code (HTTP status)", labels=["call", "code"]
        )
        for (call, code), (count, created) in sorted(self._counts.items()):
            requests.add_metric([call, str(code)], count, created=created)
        yield requests
        latency = HistogramMetricFamily(
            "workerhub_request_duration_seconds", "Time spent in the call's handler, by call name", labels=["call"]
        )
        latency_created = GaugeMetricFamily(
            "workerhub_request_duration_seconds_created", "Time spent in the call's handler, by call name",
            labels=["call"],
        )
        bounds = [repr(b) for b in LATENCY_BUCKETS] + ["+Inf"]
        for call, counts in sorted(self._latencies.items()):
            latency.add_metric([call], list(zip(bounds, accumulate(counts[:-2]))), counts[-2])
            latency_created.add_metric([call], counts[-1])
        yield latency
        yield latency_created  # as prometheus_client's Histogram exposes it


class _HubCollector(Collector):
    """Reads the hub and its store at scrape time (synchronously, on the hub's trio thread)."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    def collect(self) -> Iterable[Metric]:
        hub = self._hub
        yield _gauge("workerhub_ready", "1 when /readyz answers 200", [], [([], 0 if hub.readiness.reason() else 1)])
        per = hub.company_statistics()
        for key, name, text in (
            ("workers", "workerhub_workers", "Live registered workers, by company"),
            ("histories", "workerhub_histories", "Retained stats histories (live and expired workers), by company"),
            ("reports", "workerhub_stats_reports", "Retained raw status reports, by company"),
            ("values", "workerhub_stats_values", "Retained stat values (raw and rolled up), by company"),
        ):
            yield _gauge(name, text, ["company"], [([company], n[key]) for company, n in sorted(per.items())])
        histories = sum(n["histories"] for n in per.values())
        estimate = retention_footprint(hub.settings, histories)
        yield _gauge(
            "workerhub_stats_memory_bytes",
            "Estimated memory of the retained stats: the retention settings' footprint for the histories held "
            "(24 values every 10 s each)",
            [], [([], estimate.raw + estimate.tiers)],
        )
        yield from _store_metrics(hub)


def _gauge(name: str, text: str, labels: list[str], rows: Iterable[tuple[list[str], float]]) -> Metric:
    family = GaugeMetricFamily(name, text, labels=labels)
    for values, value in rows:
        family.add_metric(values, value)
    return family


def _store_metrics(hub: Hub) -> Iterator[Metric]:
    stats = store_statistics(hub)
    if stats is None:
        return
    yield CounterMetricFamily(
        "workerhub_journal_appends", "Mutations appended to the journal", value=stats.journal_appends
    )
    cumulative, buckets = 0, []
    for bound, count in zip((*FSYNC_BUCKETS, float("inf")), stats.fsync_counts):
        cumulative += count
        buckets.append(("+Inf" if bound == float("inf") else repr(bound), float(cumulative)))
    yield HistogramMetricFamily(
        "workerhub_journal_fsync_duration_seconds", "Journal fsync latency", buckets=buckets, sum_value=stats.fsync_sum
    )
    yield CounterMetricFamily("workerhub_snapshots", "Snapshots written", value=stats.snapshots)
    yield CounterMetricFamily(
        "workerhub_snapshot_failures", "Snapshot writes that failed (the journal kept every change)",
        value=stats.snapshot_failures,
    )
    if stats.last_snapshot_seconds is not None and stats.last_snapshot_bytes is not None:
        yield _gauge(
            "workerhub_snapshot_duration_seconds", "Time the last snapshot took to encode and write", [],
            [([], stats.last_snapshot_seconds)],
        )
        yield _gauge("workerhub_snapshot_size_bytes", "Size of the last snapshot file", [],
                     [([], stats.last_snapshot_bytes)])
    if stats.last_snapshot_at is not None:
        yield _gauge(
            "workerhub_snapshot_age_seconds", "Seconds since the cut of the snapshot on disk", [],
            [([], max(0.0, hub.clock.wall() - stats.last_snapshot_at))],
        )
    yield _gauge(
        "workerhub_persistence_writable", "1 while the journal accepts appends", [],
        [([], 0 if stats.journal_error else 1)],
    )


_FLEET_HEAD = (
    "# HELP workerhub_worker_stat Last reported value of each live worker's stats (metrics_fleet)\n"
    "# TYPE workerhub_worker_stat gauge\n"
)


def _fleet_text(hub: Hub) -> bytes:
    """The fleet gauges, formatted here rather than by prometheus_client: one sample per worker and stat
    (24,000 at 1,000 workers) costs ~1 µs this way against ~20 µs through its generic exposition code,
    and this runs on the event loop (bench/bench_metrics.py)."""
    lines = [_FLEET_HEAD]
    for company, worker, history in hub.live_histories():
        prefix = f'workerhub_worker_stat{{company="{_label(company)}",worker="{_label(worker)}",metric="'
        for (metric, variant), value in sorted(history.latest().items()):
            number = repr(value) if math.isfinite(value) else _non_finite(value)
            lines.append(f'{prefix}{_label(metric)}",variant="{_label(variant)}"}} {number}\n')
    return "".join(lines).encode()


def _non_finite(value: float) -> str:
    """The text format's spelling (validated reports never carry these)."""
    return "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")


def _label(value: str) -> str:
    """A label value escaped as the text format requires (worker ids come from clients)."""
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value
