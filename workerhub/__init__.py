"""workerhub: a self-contained server for the ClearML ``workers`` API (schema 2.4).

Layers, each importing only those before it (enforced by the import-linter contracts in pyproject.toml,
the whole picture in docs/architecture.md):
``errors, messages, config, clock, hubstate`` ← ``stats`` (pure: no trio, no quart) ← ``actors`` (trio: worker
actors, hub) and, beside it, ``persistence`` (neither imports the other: they share ``hubstate``) ← ``ops``,
``api``, ``stream`` ← ``server``, ``cli``, ``testing``.
``client`` stands apart: it shares the stream framing and nothing of the server.

The exports below are loaded on first use, so ``import workerhub.client`` or ``import workerhub.stats``
does not drag in the server stack (quart, hypercorn, PyJWT).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._version import __version__ as __version__
    from .actors import Hub, open_hub
    from .clock import Clock
    from .config import Settings
    from .errors import WorkerhubError
    from .messages import ActivityQuery, Identity, RegisterRequest, StatsItem, StatsQuery, StatusReport
    from .server import serve

__all__ = [
    "ActivityQuery",
    "Clock",
    "Hub",
    "Identity",
    "RegisterRequest",
    "Settings",
    "StatsItem",
    "StatsQuery",
    "StatusReport",
    "WorkerhubError",
    "open_hub",
    "serve",
]

# export -> the module defining it; imported by __getattr__ the first time the name is asked for
_LAZY = {
    "ActivityQuery": ".messages",
    "Clock": ".clock",
    "Hub": ".actors",
    "Identity": ".messages",
    "RegisterRequest": ".messages",
    "Settings": ".config",
    "StatsItem": ".messages",
    "StatsQuery": ".messages",
    "StatusReport": ".messages",
    "WorkerhubError": ".errors",
    # importlib.metadata costs ~0.1 s of every start; the version is read only when asked for (snapshot header)
    "__version__": "._version",
    "open_hub": ".actors",
    "serve": ".server",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
