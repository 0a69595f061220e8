"""Where hub state goes between runs. The server talks only to the :class:`Store` protocol.

Implementations: :class:`MemoryStore` (nothing on disk; the default for embedded and test use) and
:class:`DiskStore` (msgpack snapshots plus an append-only journal in a data directory); :func:`open_store`
picks one from the settings. Modules: ``format`` (frames, versions, journal records), ``journal`` (the appender),
``journal_scan`` (reading it back at a start),
``snapshot`` (files: write, verify, read), ``writer`` (forked child or thread), ``disk`` (the two combined),
``store`` (the protocols).

Layers (each imports only those before it)::

    errors, messages, config, clock, hubstate  <-  stats  <-  actors       <-  api, stream  <-  server, cli, testing
                                                          <-  persistence  <-

``persistence`` never imports ``actors``: it persists anything implementing :class:`Persisted` (the hub
does) and exchanges plain :mod:`workerhub.hubstate` data with it; the hub records mutations through the
:class:`~workerhub.hubstate.MutationLog` protocol and never imports ``persistence`` either. The write gate
lives with the hub (``workerhub.actors.gate``), where the writes are.
"""

from .disk import DiskStore, default_data_dir, open_store
from .format import PersistenceError
from .memory import MemoryStore
from .store import HubState, Persisted, Store

__all__ = [
    "DiskStore",
    "HubState",
    "MemoryStore",
    "Persisted",
    "PersistenceError",
    "Store",
    "default_data_dir",
    "open_store",
]
