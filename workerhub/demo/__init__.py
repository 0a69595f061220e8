"""A demo fleet: simulated agents posting realistic reports, for the dashboard and as a load generator.

- :class:`Fleet`: ``n`` simulated machines (8-64 cores with a diurnal load, 0-8 GPUs with jobs that start
  and finish, memory, network, disk; some join and leave), deterministic in ``seed``.
- :class:`DemoRunner`: sends a fleet's reports to a server over HTTP or the msgpack stream: ``backfill``
  past hours in seconds, then ``run`` live.

``workerhub demo --url URL`` and ``workerhub serve --demo N`` use them; see docs/dashboard.md.
"""

from .fleet import DemoWorker, Fleet
from .runner import DemoError, DemoRunner, login

__all__ = ["DemoError", "DemoRunner", "DemoWorker", "Fleet", "login"]
