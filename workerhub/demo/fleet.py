"""A simulated fleet: what each demo worker reports at a given second.

Everything is a pure function of ``(seed, worker, time)``: the same seed gives the same reports for the
same timestamps whenever they are computed, so a backfill and the live loop that follows it agree, and
tests can predict the data. Units are the clearml-agent's: percent, MiB for memory, MB/s for network
and disk, degrees Celsius.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from typing import Any

__all__ = ["DemoWorker", "Fleet"]

_DAY = 86400.0
_KINDS = (
    # (name, queues, cores choices, gpu choices, memory GiB choices)
    ("gpu-a100", ("gpu", "default"), (32, 64), (4, 8), (256, 512)),
    ("gpu-t4", ("gpu-small", "default"), (8, 16), (1, 2), (64, 128)),
    ("cpu-large", ("cpu", "default"), (32, 48, 64), (0,), (128, 256)),
    ("cpu-small", ("services",), (8, 16), (0,), (32, 64)),
)


def _unit(*parts: object) -> float:
    """A uniform number in [0, 1) determined by ``parts`` (stable across runs and Python versions)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


@dataclass(frozen=True, slots=True)
class DemoWorker:
    """One simulated machine: its shape and its habits."""

    id: str
    index: int
    queues: tuple[str, ...]
    cores: int
    gpus: int
    memory_mib: float
    ephemeral: bool
    """Autoscaled: present only in some hours, it joins and leaves during the day."""
    job_minutes: int
    """Typical length of a job on this worker (jobs start and finish on slot boundaries)."""
    phase: float
    """Offset of its slots in seconds, so workers do not all change jobs at the same moment."""


class Fleet:
    """``n`` demo workers; a quarter of them (at least one when ``n >= 4``) come and go."""

    def __init__(self, n: int, *, seed: int = 0) -> None:
        if n < 0:
            raise ValueError(f"the number of workers must be >= 0, got {n}")
        self.seed = seed
        self.workers: list[DemoWorker] = [self._make(i) for i in range(n)]

    def _make(self, i: int) -> DemoWorker:
        rng = random.Random(f"{self.seed}:{i}")
        name, queues, cores, gpus, memory = _KINDS[i % len(_KINDS)]
        return DemoWorker(
            id=f"{name}-{i:03d}",
            index=i,
            queues=queues,
            cores=rng.choice(cores),
            gpus=rng.choice(gpus),
            memory_mib=rng.choice(memory) * 1024.0,
            ephemeral=i % 4 == 3,
            job_minutes=rng.choice((20, 30, 45, 60, 90)),
            phase=rng.uniform(0, 3600),
        )

    def load(self, t: float) -> float:
        """Fleet-wide diurnal load in [0.15, 0.85]: low at night, peaking mid-afternoon (UTC)."""
        hour = (t % _DAY) / 3600.0
        return 0.5 + 0.35 * math.sin((hour - 9.0) / 24.0 * 2 * math.pi)

    def present(self, w: DemoWorker, t: float) -> bool:
        """Whether ``w`` is up at ``t``: a permanent worker always; an autoscaled one by the hour and load."""
        if not w.ephemeral:
            return True
        hour = int((t + w.phase) // 3600)
        return _unit(self.seed, w.index, "up", hour) < 0.2 + 0.7 * self.load(t)

    def task(self, w: DemoWorker, t: float) -> str | None:
        """The task ``w`` runs at ``t``, or None when idle: jobs fill slots of ``job_minutes``."""
        slot_len = w.job_minutes * 60
        slot = int((t + w.phase) // slot_len)
        if _unit(self.seed, w.index, "job", slot) >= 0.15 + 0.8 * self.load(slot * slot_len):
            return None
        return hashlib.blake2b(f"{self.seed}:{w.index}:{slot}".encode(), digest_size=16).hexdigest()

    def report(self, w: DemoWorker, t: float) -> dict[str, Any]:
        """The ``workers.status_report`` body ``w`` sends at ``t`` (epoch seconds)."""
        rng = random.Random(f"{self.seed}:{w.index}:{int(t)}")
        task = self.task(w, t)
        busy = task is not None
        base = self.load(t) * (0.9 if busy else 0.25) * 100
        cpu = [_clip(base + rng.gauss(0, 12)) for _ in range(w.cores)]
        stats: dict[str, Any] = {
            "cpu_usage": cpu,
            "cpu_temperature": [_clip(35 + 0.4 * sum(cpu) / len(cpu) + rng.gauss(0, 2), 20, 105)],
            "memory_used": round(
                w.memory_mib * (0.15 + (0.6 if busy else 0.1) * self.load(t) + rng.uniform(0, 0.1)), 1
            ),
            "network_rx": round(rng.expovariate(1 / (40.0 if busy else 2.0)), 3),
            "network_tx": round(rng.expovariate(1 / (10.0 if busy else 0.5)), 3),
            "disk_read": round(rng.expovariate(1 / (60.0 if busy else 1.0)), 3),
            "disk_write": round(rng.expovariate(1 / (25.0 if busy else 0.5)), 3),
            "disk_free_home": round(40 + 30 * _unit(self.seed, w.index, "disk") - (10 if busy else 0), 1),
        }
        stats["memory_free"] = round(w.memory_mib - stats["memory_used"], 1)
        if w.gpus:
            gpu_total = 40960.0 if w.cores >= 32 else 16384.0
            usage = [_clip((85 if busy else 2) + rng.gauss(0, 8 if busy else 1), 0.5) for _ in range(w.gpus)]
            used = [
                round(gpu_total * (0.7 if busy else 0.02) + rng.uniform(0, 500), 1) for _ in range(w.gpus)
            ]
            stats["gpu_usage"] = usage
            stats["gpu_memory_used"] = used
            stats["gpu_memory_free"] = [round(gpu_total - u, 1) for u in used]
            stats["gpu_temperature"] = [_clip(30 + 0.5 * u + rng.gauss(0, 2), 20, 95) for u in usage]
        body: dict[str, Any] = {"worker": w.id, "timestamp": int(t * 1000), "machine_stats": stats}
        if task is not None:
            body["task"] = task
        return body


def _clip(value: float, low: float = 0.1, high: float = 100.0) -> float:
    # never exactly 0: upstream drops a zero reading (quirk Q2), a demo should show a continuous line
    return round(min(high, max(low, value)), 2)
