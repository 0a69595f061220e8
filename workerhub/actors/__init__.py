"""Worker actors and the hub that owns them."""

from .hub import Hub, open_hub
from .worker import WorkerActor, WorkerState

__all__ = ["Hub", "WorkerActor", "WorkerState", "open_hub"]
