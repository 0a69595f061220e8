"""Run a real workerhub inside a test suite.

:func:`running_server` starts the server (hypercorn on a free port, real sockets) in a background thread and
yields a :class:`ServerHandle`; its clock is trio's ``MockClock`` running at real speed, so
:meth:`ServerHandle.advance_clock` moves time forward and fires worker timeouts without sleeping.
"""

from ._server import ServerHandle, running_server

__all__ = ["ServerHandle", "running_server"]
