"""``workerhub`` command line: ``workerhub serve [--host H] [--port P] [--demo N] ...``,
``workerhub demo --url URL ...``, ``workerhub snapshot inspect FILE``.

Every setting of :class:`~workerhub.config.Settings` is a flag; only the flags actually given override the
lower layers (defaults < ``--config`` TOML < ``WORKERHUB_*`` environment).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, get_args

import trio

from .api.auth import check_settings
from .config import Settings, SettingsError, setting_docs
from .errors import find_error

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
    serve.add_argument(
        "--demo", type=_count, default=0, metavar="N",
        help="also run N simulated workers against this server (memory only unless --persist/--data-dir)",
    )
    serve.add_argument(
        "--demo-backfill", type=_duration, default=86400.0, metavar="DURATION",
        help="history the demo writes at start, e.g. 24h, 90m, 0 (default 24h)",
    )
    serve.add_argument("--demo-seed", type=int, default=0, help="seed of the demo fleet (default 0)")
    _add_setting_flags(serve)
    demo = sub.add_parser("demo", help="run simulated workers against a server (see docs/dashboard.md)")
    demo.add_argument("--url", required=True, help="the server's HTTP URL, e.g. http://127.0.0.1:8008")
    demo.add_argument("--workers", type=_count, default=50, metavar="N", help="fleet size (default 50)")
    demo.add_argument("--transport", choices=("http", "stream"), default="http", help="default http")
    demo.add_argument("--stream-url", help="the server's msgpack://host:port (with --transport stream)")
    demo.add_argument(
        "--backfill", type=_duration, default=0.0, metavar="DURATION",
        help="first write this much past history, e.g. 24h (default 0: none)",
    )
    demo.add_argument(
        "--backfill-step", type=_duration, default=60.0, metavar="DURATION",
        help="between backfilled reports (default 60s)",
    )
    demo.add_argument(
        "--interval", type=_duration, default=10.0, metavar="DURATION", help="between live reports (10s)"
    )
    demo.add_argument("--timeout", type=_count, default=120, help="the workers' register timeout, s (120)")
    demo.add_argument("--seed", type=int, default=0, help="same seed, same fleet and reports (default 0)")
    demo.add_argument("--access-key", help="credentials mode: log in with this key ...")
    demo.add_argument("--secret-key", help="... and this secret")
    demo.add_argument("--no-live", dest="live", action="store_false", help="exit after the backfill")
    snapshot = sub.add_parser("snapshot", help="work with snapshot files")
    snapshot_sub = snapshot.add_subparsers(dest="snapshot_command", required=True)
    inspect = snapshot_sub.add_parser("inspect", help="print a summary of a snapshot file")
    inspect.add_argument("file", help="a snapshot.msgpack")
    inspect.add_argument("--json", action="store_true", help="print the summary as JSON")
    return parser


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(text: str) -> float:
    """``90``, ``90s``, ``15m``, ``24h``, ``7d`` -> seconds."""
    unit = _UNITS.get(text[-1:].lower())
    try:
        value = float(text[:-1] if unit else text) * (unit or 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a duration (90s, 15m, 24h, 7d), got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"a duration must be finite and >= 0, got {text!r}")
    return value


def _demo(args: argparse.Namespace) -> int:
    from .client import StreamError
    from .demo import DemoError, DemoRunner, Fleet, login

    if args.transport == "stream" and not args.stream_url:
        print("workerhub: --transport stream needs --stream-url msgpack://host:port", file=sys.stderr)
        return 2
    if bool(args.access_key) != bool(args.secret_key):
        print("workerhub: give both --access-key and --secret-key, or neither", file=sys.stderr)
        return 2
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    try:
        token = login(args.url, args.access_key, args.secret_key) if args.access_key else None
        with DemoRunner(
            args.url, Fleet(args.workers, seed=args.seed), transport=args.transport,
            stream_url=args.stream_url, token=token, timeout=args.timeout, interval=args.interval,
        ) as runner:
            if args.backfill:
                runner.backfill(args.backfill, step=args.backfill_step)
            if args.live:
                every = f"every {args.interval:g} s"
                print(f"workerhub demo: {args.workers} workers reporting {every} to {args.url}", flush=True)
                signal.signal(signal.SIGTERM, lambda *_: stop.set())
                try:
                    runner.run(stop)
                except KeyboardInterrupt:
                    pass  # Ctrl-C is how a live demo ends
    except KeyboardInterrupt:
        return 130  # interrupted during the backfill
    except (DemoError, StreamError, ValueError, OSError) as exc:
        print(f"workerhub: {exc}", file=sys.stderr)
        return 1
    return 0


def _start_demo(args: argparse.Namespace, settings: Settings, urls: list[str], stop: threading.Event) -> None:
    """``serve --demo N``: the demo fleet in a thread of this process until ``stop`` (backfill: stream).

    In credentials mode the fleet logs in with the first ``--auth`` entry.
    """
    from .demo import DemoRunner, Fleet, login

    log = logging.getLogger("workerhub.demo")
    http = urls[0]
    stream = next((u for u in urls if u.startswith("msgpack://")), None)

    def main() -> None:
        try:
            token = login(http, *settings.auth[0].split(":")[:2]) if settings.auth else None
            with DemoRunner(
                http, Fleet(args.demo, seed=args.demo_seed), transport="stream" if stream else "http",
                stream_url=stream, token=token,
            ) as runner:
                if args.demo_backfill:
                    runner.backfill(args.demo_backfill)
                log.info("demo: %d workers reporting every 10 s", args.demo)
                runner.run(stop)
        except Exception:
            if not stop.is_set():  # errors while the server stops are expected
                log.exception("the demo fleet stopped")

    threading.Thread(target=main, name="workerhub-demo", daemon=True).start()


async def _run(settings: Settings, args: argparse.Namespace | None = None) -> None:
    """Serve until SIGINT/SIGTERM: stop accepting, finish in-flight requests, final snapshot, return.

    A second signal exits at once (status 1) without the final snapshot: the journal still has every
    acknowledged mutation, so this is as safe as a crash.
    """
    from .server import serve

    log = logging.getLogger("workerhub")
    stop = trio.Event()
    demo_stop = threading.Event()
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:

        async def watch() -> None:
            async for signum in signals:
                name = signal.Signals(signum).name
                if not stop.is_set():
                    log.info("got %s: stopping (finishing requests, final snapshot); again to force", name)
                    demo_stop.set()
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
            if settings.dashboard:
                print(f"dashboard: {_browser_url(urls[0])}/", flush=True)
            if args is not None and args.demo:
                _start_demo(args, settings, urls, demo_stop)
    demo_stop.set()
    log.info("stopped")


def _browser_url(url: str) -> str:
    """The URL to open: a wildcard bind address is not one a browser can use."""
    for wildcard in ("//0.0.0.0:", "//[::]:"):
        url = url.replace(wildcard, "//127.0.0.1:")
    return url


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
    local = ("command", "config", "demo", "demo_backfill", "demo_seed")
    overrides = {k: v for k, v in vars(args).items() if k not in local and v is not None}
    if getattr(args, "demo", None):
        # A demo fleet must not land in the real data dir, and its backfill goes over the stream (seconds,
        # not minutes): memory only and a stream port, unless given.
        overrides.setdefault("persist", "data_dir" in overrides)
        overrides.setdefault("msgpack_port", 0)
    settings = Settings.load(toml_path=args.config, env=env, overrides=overrides)
    check_settings(settings)  # refuse malformed --auth entries or a short secret before binding a port
    return settings


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "snapshot":
        return _inspect(args.file, args.json)
    if args.command == "demo":
        return _demo(args)
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
        clock = None
        if settings.testing:
            from trio.testing import MockClock  # late: only testing mode needs it; ~0.1-0.2 s of every start

            clock = MockClock(rate=1.0)
        trio.run(_run, settings, args, clock=clock)
    except BaseException as exc:
        failure = find_error(exc, PersistenceError) or find_error(exc, OSError)
        if failure is None:
            raise
        print(f"workerhub: {failure}", file=sys.stderr)
        return 1
    return 0
