"""``workerhub`` command line: ``workerhub serve [--host H] [--port P] ...``.

Every setting of :class:`~workerhub.config.Settings` is a flag; only the flags actually given override the
lower layers (defaults < ``--config`` TOML < ``WORKERHUB_*`` environment).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from functools import partial
from typing import get_args

import trio
import trio.testing

from .config import Settings, SettingsError, setting_docs

__all__ = ["main"]


def _add_setting_flags(parser: argparse.ArgumentParser) -> None:
    for name, (hint, doc) in setting_docs().items():
        flag = "--" + name.replace("_", "-")
        if hint is bool:
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
    return parser


async def _run(settings: Settings) -> None:
    from .server import serve

    async def until_signal() -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                logging.getLogger("workerhub").info("got %s, stopping", signal.Signals(signum).name)
                return

    async with trio.open_nursery() as nursery:
        _hub, urls = await nursery.start(partial(serve, settings, shutdown_trigger=until_signal))
        print(f"workerhub listening on {' '.join(urls)}", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    overrides = {k: v for k, v in vars(args).items() if k not in ("command", "config") and v is not None}
    try:
        settings = Settings.load(toml_path=args.config, overrides=overrides)
    except (SettingsError, OSError) as exc:
        print(f"workerhub: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        # testing mode: trio on a MockClock at real speed, so debug.advance_clock can jump it
        clock = trio.testing.MockClock(rate=1.0) if settings.testing else None
        trio.run(_run, settings, clock=clock)
    except OSError as exc:
        print(f"workerhub: {exc}", file=sys.stderr)
        return 1
    return 0
