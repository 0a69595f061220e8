"""workerhub: a self-contained server for the ClearML ``workers`` API (schema 2.4).

Layers, each importing only those before it:
``errors, messages, config, hubstate`` ← ``stats`` (pure: no trio, no quart) ← ``actors`` (trio: worker actors,
hub) and, beside it, ``persistence`` (neither imports the other: they share ``hubstate``) ← ``api`` (parsing,
endpoint table, envelope, HTTP app) ← ``server``, ``cli``.
"""

from .actors import Hub, open_hub
from .clock import Clock
from .config import Settings
from .errors import WorkerhubError
from .messages import ActivityQuery, Identity, RegisterRequest, StatsItem, StatsQuery, StatusReport
from .server import serve

__version__ = "0.1.0"

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
