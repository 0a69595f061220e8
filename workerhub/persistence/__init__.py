"""Where hub state goes between runs. The hub talks only to the :class:`Store` protocol.

Implementations: :class:`MemoryStore` (nothing on disk; the default for embedded and test use).
"""

from .memory import MemoryStore
from .store import Store

__all__ = ["MemoryStore", "Store"]
