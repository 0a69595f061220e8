"""Run a real workerhub inside a test suite, and move its time.

- :func:`running_server`: a context manager that starts the server (hypercorn on a free port, real
  sockets) in a background thread and yields a :class:`ServerHandle` with ``url``, a ready ``client``,
  ``reset()`` and ``advance_clock(seconds)``. Works from plain sync code, unittest and pytest.
- :class:`Client`: a small sync client, ``client.call("workers.get_all", last_seen=0) -> data``, raising
  :class:`ApiError` (``code``, ``subcode``, ``message``) on an error reply.
- :class:`RemoteServer`: the same surface for a server running elsewhere in testing mode.
- :func:`running_demo`: a demo fleet (``workerhub.demo``) backfilled into a server, optionally live.
- ``workerhub.testing.plugin``: the pytest plugin (fixtures ``workerhub``, ``workerhub_server``,
  ``workerhub_url``, ``workerhub_client``, ``workerhub_hub``), loaded automatically once workerhub is
  installed.

The server's clock is trio's ``MockClock`` running at real speed: ``advance_clock`` jumps it, so a 600 s
worker timeout is tested in milliseconds, without sleeping. See ``docs/testing.md``.
"""

from ._client import ApiError, Client
from ._demo import running_demo
from ._remote import RemoteServer, WorkerhubServer
from ._server import ServerHandle, ServerStartError, ServerStoppedError, running_server

__all__ = [
    "ApiError",
    "Client",
    "RemoteServer",
    "ServerHandle",
    "ServerStartError",
    "ServerStoppedError",
    "WorkerhubServer",
    "running_demo",
    "running_server",
]
