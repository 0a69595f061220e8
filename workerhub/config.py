"""Settings: one frozen object, built from defaults < TOML file < ``WORKERHUB_*`` env vars < CLI flags.

Every knob workerhub has is a field of :class:`Settings`; the CLI derives its flags from these fields, so a
setting is added in exactly one place. Unknown keys are refused, never ignored.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args, get_type_hints

__all__ = ["Settings", "SettingsError"]

JournalFsync = Literal["always", "interval", "never"]
SnapshotWriter = Literal["fork", "thread"]


class SettingsError(ValueError):
    """A setting has an unknown name or a value of the wrong type; the message names it."""


def _doc(text: str) -> dict[str, str]:
    return {"doc": text}


@dataclass(frozen=True, slots=True)
class Settings:
    """How a workerhub server behaves. Times are in **seconds** unless the name says otherwise."""

    host: str = field(default="127.0.0.1", metadata=_doc("address to listen on"))
    port: int = field(default=8008, metadata=_doc("HTTP port; 0 picks a free port"))
    log_level: str = field(default="info", metadata=_doc("logging level (debug, info, warning, error)"))

    # --- ClearML behaviour switches (spec quirks Q2-Q4, Q13-Q15) ---
    default_timeout: int = field(
        default=600, metadata=_doc("timeout of workers auto-registered by status_report")
    )
    auto_register: bool = field(
        default=True, metadata=_doc("status_report of an unknown worker registers it (else 400/1001)")
    )
    auto_unregister: bool | None = field(
        default=None,
        metadata=_doc(
            "unregister of an unknown worker succeeds (else 400/1004); "
            "unset: off below API 2.32, on from 2.32"
        ),
    )
    fix_quirks: bool = field(
        default=False,
        metadata=_doc(
            "opt-in fixed mode: record zero values; activity report zero-filled over the range and "
            "its last bucket dropped only when really incomplete"
        ),
    )

    # --- retention and limits ---
    raw_retention: float = field(
        default=86400.0, metadata=_doc("keep raw samples at least this long after they were written")
    )
    tier_retention: float = field(
        default=30 * 86400.0, metadata=_doc("keep rolled-up samples at least this long")
    )
    max_workers: int = field(default=100_000, metadata=_doc("cap on registered workers per company"))
    max_body_bytes: int = field(default=4 * 1024 * 1024, metadata=_doc("largest request body accepted"))
    max_variants: int = field(
        default=1024, metadata=_doc("longest list stat accepted (cpu_usage, gpu_*: one entry per core/GPU); 400/12")
    )
    max_histories: int = field(
        default=10_000,
        metadata=_doc("cap on worker ids with retained stats per company; one more is refused with 400/1002"),
    )
    max_memory_mb: int | None = field(
        default=None,
        metadata=_doc(
            "soft limit on the process RSS (MiB, read at most once a second): above it new workers and new "
            "series are refused with 400/1002, existing ones keep reporting; unset = no limit"
        ),
    )
    max_series_per_worker: int = field(
        default=4096, metadata=_doc("cap on distinct (metric, variant) series one worker id may hold")
    )
    max_query_values: int = field(
        default=8_000_000, metadata=_doc("cap on workers x series x buckets one get_stats may answer")
    )

    # --- persistence ---
    persist: bool = field(
        default=True,
        metadata=_doc("keep state in data_dir across restarts (--no-persist: memory only; embedded use: off)"),
    )
    data_dir: str | None = field(
        default=None,
        metadata=_doc("snapshot + journal directory (default $XDG_DATA_HOME/workerhub or ~/.local/share/workerhub)"),
    )
    snapshot_interval: float = field(
        default=300.0, metadata=_doc("seconds between periodic snapshots (the journal is compacted after each)")
    )
    journal_fsync: JournalFsync = field(
        default="interval",
        metadata=_doc(
            "journal durability: always (fsync before each ack: an OS crash loses nothing acked) | interval "
            "(fsync every 1 s: an OS crash loses up to ~1 s) | never (the OS flushes, ~30 s); "
            "a crash of the process alone loses nothing acked in any mode"
        ),
    )
    snapshot_writer: SnapshotWriter = field(
        default="fork",
        metadata=_doc(
            "who writes a snapshot: fork (a child forked at the cut: off the server's GIL, no read can reach "
            "it; falls back to thread where os.fork does not exist) | thread (a worker thread)"
        ),
    )
    allow_partial_start: bool = field(
        default=False,
        metadata=_doc(
            "start even when the journal follows a snapshot that is missing (its data is then lost; logged "
            "as an error); without it such a start is refused"
        ),
    )

    # --- auth (credentials mode when non-empty) ---
    auth: tuple[str, ...] = field(
        default=(), metadata=_doc("credentials KEY:SECRET[:COMPANY[:USER]]; repeatable; empty = open mode")
    )
    token_secret: str | None = field(default=None, metadata=_doc("JWT signing secret (default: random)"))

    # --- transports and test support ---
    msgpack_port: int | None = field(default=None, metadata=_doc("port of the native msgpack stream"))
    stream_max_connections: int = field(
        default=1000, metadata=_doc("open msgpack stream connections; one more gets a 503 frame and is closed")
    )
    stream_idle_timeout: float = field(
        default=300.0, metadata=_doc("a stream connection with no request for this long is closed")
    )
    stream_frame_timeout: float = field(
        default=30.0, metadata=_doc("a stream frame started but not complete after this long closes its connection")
    )
    stream_buffer_bytes: int = field(
        default=64 * 1024 * 1024,
        metadata=_doc("bytes of unprocessed stream input held across all connections; above it 503 and close"),
    )
    http_keep_alive_timeout: float = field(
        default=5.0, metadata=_doc("an HTTP connection idle (or still sending its headers) this long is closed")
    )
    listen_backlog: int = field(
        default=1024, metadata=_doc("pending TCP connections queued by the kernel, per listener (HTTP and stream)")
    )
    testing: bool = field(default=False, metadata=_doc("enable clock control (debug.advance_clock)"))
    dashboard: bool = field(default=True, metadata=_doc("serve the web dashboard at / (--no-dashboard: off)"))
    max_api_version: str = field(
        default="2.34",
        metadata=_doc(
            "API version of unversioned requests and cap of versioned ones (2.4 up to 2.32: the 2020 "
            "server's answers; 2.32 and above: today's); 2.4 turns workerhub back into the seed server"
        ),
    )

    def __post_init__(self) -> None:
        m = re.fullmatch(r"(\d{1,4})\.(\d{1,4})", self.max_api_version)
        if m is None or (int(m[1]), int(m[2])) < (2, 4):
            raise SettingsError(
                f"setting 'max_api_version' must be a version X.Y >= 2.4, not {self.max_api_version!r}"
            )
        if self.gc_full_threshold < 1:
            raise SettingsError(f"setting 'gc_full_threshold' must be >= 1, not {self.gc_full_threshold}")

    # --- operations (docs/operations.md) ---
    metrics: bool = field(default=True, metadata=_doc("serve Prometheus GET /metrics (--no-metrics: off)"))
    metrics_port: int | None = field(
        default=None,
        metadata=_doc("serve /metrics on this port instead of the HTTP port, with /livez and /readyz (0: a free port)"),
    )
    metrics_fleet: bool = field(
        default=False,
        metadata=_doc("add the last value of every live worker's stats to /metrics (one series per worker x stat)"),
    )

    # --- garbage collector (docs/benchmarks.md, "Tail latency"; the CLI process only) ---
    gc_freeze: bool = field(
        default=True,
        metadata=_doc("after the load: gc.freeze() what is alive, set the full-pass threshold (--no-gc-freeze: off)"),
    )
    gc_full_threshold: int = field(
        default=100,
        metadata=_doc("CPython's generation 2 GC threshold when gc_freeze is on (its default: 10)"),
    )

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied and validated like any other source."""
        return Settings.from_mapping({**self.as_dict(), **changes})

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Settings:
        """Settings from a mapping of field names (``-`` and ``_`` alike); unknown keys are refused."""
        hints = _hints()
        out: dict[str, Any] = {}
        for raw_key, value in values.items():
            key = raw_key.replace("-", "_")
            if key not in hints:
                raise SettingsError(f"unknown setting {raw_key!r}")
            out[key] = _coerce(key, value, hints[key])
        return cls(**out)

    @classmethod
    def from_toml(cls, path: str) -> Settings:
        """Settings from a TOML file (top-level keys, or a ``[workerhub]`` table and nothing else).

        Raises :class:`SettingsError` naming the file for a file that is not TOML, and ``OSError`` for one
        that cannot be read.
        """
        import tomllib  # late: only a --config start reads TOML

        with open(path, "rb") as f:
            try:
                doc = tomllib.load(f)
            except tomllib.TOMLDecodeError as exc:
                raise SettingsError(f"config file {path}: not valid TOML: {exc}") from None
        if "workerhub" not in doc:
            return cls.from_mapping(doc)
        table = doc["workerhub"]
        others = sorted(k for k in doc if k != "workerhub")
        if not isinstance(table, dict) or others:
            # settings beside the table would be silently ignored: refuse the file instead
            raise SettingsError(
                f"config file {path}: put every setting in the [workerhub] table or none of them"
                + (f" (found {', '.join(map(repr, others))} outside it)" if others else "")
            )
        return cls.from_mapping(table)

    @classmethod
    def load(
        cls,
        *,
        toml_path: str | None = None,
        env: Mapping[str, str] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> Settings:
        """Layer the sources: defaults < TOML < ``WORKERHUB_*`` env < ``overrides`` (the CLI flags given)."""
        merged: dict[str, Any] = {}
        if toml_path:
            merged.update(cls.from_toml(toml_path).as_dict())
        env = os.environ if env is None else env
        hints = _hints()
        for name in hints:
            raw = env.get(_ENV_PREFIX + name.upper())
            if raw is not None:
                merged[name] = raw
        for var in env:
            # Not refused: the environment is shared (e.g. Kubernetes service links named after the
            # service), but a typo should not pass unnoticed.
            if var.startswith(_ENV_PREFIX) and var[len(_ENV_PREFIX) :].lower() not in hints:
                log.warning("ignoring environment variable %s: there is no such workerhub setting", var)
        merged.update(overrides or {})
        return cls.from_mapping(merged)


_ENV_PREFIX = "WORKERHUB_"
log = logging.getLogger(__name__)


def _hints() -> dict[str, Any]:
    return get_type_hints(Settings)


def setting_docs() -> dict[str, tuple[Any, str]]:
    """``{name: (type hint, help text)}`` for each setting, in declaration order (used by the CLI)."""
    hints = _hints()
    return {f.name: (hints[f.name], f.metadata.get("doc", "")) for f in dataclasses.fields(Settings)}


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """Turn ``value`` (from TOML, env or CLI, so possibly a string) into the field's type."""
    args = get_args(hint)
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif hint is str:
        if isinstance(value, str):
            return value
    elif hint == tuple[str, ...]:
        if isinstance(value, str):
            return tuple(p.strip() for p in value.split(",") if p.strip())
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return tuple(value)
    elif args and all(isinstance(a, str) for a in args):  # Literal[...]
        if value in args:
            return value
        raise SettingsError(f"setting {name!r} must be one of {', '.join(args)}, not {value!r}")
    elif type(None) in args:  # Optional[X]
        if value is None or value == "":
            return None
        inner = next(a for a in args if a is not type(None))
        return _coerce(name, value, inner)
    raise SettingsError(f"setting {name!r} has a value of the wrong type: {value!r}")
