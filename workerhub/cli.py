"""``workerhub`` command line: ``workerhub serve [--host H] [--port P] ...``, ``workerhub snapshot inspect FILE``.

Every setting of :class:`~workerhub.config.Settings` is a flag; only the flags actually given override the
lower layers (defaults < ``--config`` TOML < ``WORKERHUB_*`` environment).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, get_args

import trio
import trio.testing

from .api.auth import check_settings
from .config import Settings, SettingsError, setting_docs

__all__ = ["main", "serve_settings"]


def _add_setting_flags(parser: argparse.ArgumentParser) -> None:
    for name, (hint, doc) in setting_docs().items():
        flag = "--" + name.replace("_", "-")
        if hint is bool or hint == (bool | None):  # unset (None) stays distinct from --no-...
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=doc)
        elif hint == tuple[str, ...]:
            parser.add_argument(flag, dest=name, action="append", default=None, help=doc)
        else:
            choices = get_args(hint) if all(isinstance(a, str) for a in get_args(hint)) and get_args(hint) else None
            parser.add_argument(flag, dest=name, default=None, choices=choices, help=doc)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workerhub", description="A self-contained ClearML workers API server.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server (default 127.0.0.1:8008)")
    serve.add_argument("--config", help="TOML file with settings")
    _add_setting_flags(serve)
    snapshot = sub.add_parser("snapshot", help="work with snapshot files")
    snapshot_sub = snapshot.add_subparsers(dest="snapshot_command", required=True)
    inspect = snapshot_sub.add_parser("inspect", help="print a summary of a snapshot file")
    inspect.add_argument("file", help="a snapshot.msgpack")
    inspect.add_argument("--json", action="store_true", help="print the summary as JSON")
    return parser


async def _run(settings: Settings) -> None:
    """Serve until SIGINT/SIGTERM: stop accepting, finish in-flight requests, final snapshot, return.

    A second signal exits at once (status 1) without the final snapshot: the journal still has every
    acknowledged mutation, so this is as safe as a crash.
    """
    from .server import serve

    log = logging.getLogger("workerhub")
    stop = trio.Event()
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:

        async def watch() -> None:
            async for signum in signals:
                name = signal.Signals(signum).name
                if not stop.is_set():
                    log.info("got %s: stopping (finishing requests, final snapshot); again to force", name)
                    stop.set()
                else:
                    print(f"workerhub: got {name} again, exiting now without a final snapshot", file=sys.stderr)
                    sys.stderr.flush()
                    os._exit(1)

        async def run_server(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
            await serve(settings, shutdown_trigger=stop.wait, task_status=task_status)
            nursery.cancel_scope.cancel()  # the server stopped: stop watching signals

        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch)
            _hub, urls = await nursery.start(run_server)
            print(f"workerhub listening on {' '.join(urls)}", flush=True)
    log.info("stopped")


def _leaf(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    """The first ``kind`` inside ``exc``, looking through exception groups (trio nurseries wrap errors)."""
    if isinstance(exc, kind):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _leaf(inner, kind)
            if found is not None:
                return found
    return None


def _inspect(path: str, as_json: bool) -> int:
    from .persistence import PersistenceError
    from .persistence.snapshot import inspect_snapshot

    try:
        summary = inspect_snapshot(path)
    except (PersistenceError, OSError) as exc:
        print(f"workerhub: {exc}", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps(summary, indent=2))
        return 0

    def when(ms: int | None) -> str:
        return "-" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")

    created = datetime.fromtimestamp(summary["created_at"], UTC).isoformat(timespec="seconds")
    rows = [
        ("file", summary["file"]),
        ("size", f"{summary['size_bytes'] / 1e6:.1f} MB"),
        ("format version", summary["format"]),
        ("written by", f"workerhub {summary['workerhub']}"),
        ("created at", created),
        ("workers (registered)", summary["workers"]),
        ("histories", summary["histories"]),
        ("series", summary["series"]),
        ("reports", summary["reports"]),
        ("samples", summary["samples"]),
        ("time range", f"{when(summary['first_ms'])} .. {when(summary['last_ms'])}"),
    ]
    for key, value in rows:
        print(f"{key:<22}{value}")
    return 0


def serve_settings(argv: Sequence[str], env: Mapping[str, str] | None = None) -> Settings:
    """The settings ``workerhub serve ARGV`` runs with: defaults < ``--config`` TOML < ``WORKERHUB_*`` in
    ``env`` (default ``os.environ``) < the flags given. Raises :class:`~workerhub.config.SettingsError`
    (or ``OSError`` for an unreadable ``--config``) naming the bad setting; bad flag syntax exits (argparse).
    """
    return _settings(_parser().parse_args(["serve", *argv]), env)


def _settings(args: argparse.Namespace, env: Mapping[str, str] | None) -> Settings:
    overrides = {k: v for k, v in vars(args).items() if k not in ("command", "config") and v is not None}
    settings = Settings.load(toml_path=args.config, env=env, overrides=overrides)
    check_settings(settings)  # refuse malformed --auth entries or a short secret before binding a port
    return settings


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "snapshot":
        return _inspect(args.file, args.json)
    try:
        settings = _settings(args, None)
    except (SettingsError, OSError) as exc:
        print(f"workerhub: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from .persistence import PersistenceError

    try:
        # testing mode: trio on a MockClock at real speed, so debug.advance_clock can jump it
        clock = trio.testing.MockClock(rate=1.0) if settings.testing else None
        trio.run(_run, settings, clock=clock)
    except BaseException as exc:
        failure = _leaf(exc, PersistenceError) or _leaf(exc, OSError)
        if failure is None:
            raise
        print(f"workerhub: {failure}", file=sys.stderr)
        return 1
    return 0
