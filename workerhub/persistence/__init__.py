"""Where hub state goes between runs. The hub talks only to the :class:`Store` protocol.

Implementations: :class:`MemoryStore` (nothing on disk; the default for embedded and test use) and
:class:`DiskStore` (msgpack snapshots plus an append-only journal in a data directory); :func:`open_store`
picks one from the settings. Modules: ``format`` (frames, versions, journal records), ``journal``,
``snapshot``, ``disk`` (the two combined), ``gate`` (the cut between mutations and snapshots).
"""

from .disk import DiskStore, default_data_dir, open_store
from .format import PersistenceError
from .memory import MemoryStore
from .store import HubState, Store

__all__ = ["DiskStore", "HubState", "MemoryStore", "PersistenceError", "Store", "default_data_dir", "open_store"]
