"""pytest plugin: a real workerhub for your tests, cleared before each one, with time you can move.

Loaded automatically once workerhub is installed (``pytest11`` entry point ``workerhub``). Fixtures:

``workerhub_server`` (session)
    The session's server: :class:`~workerhub.testing.ServerHandle` (in this process, on a free port) or,
    with ``--workerhub-url URL``, a :class:`~workerhub.testing.RemoteServer` for a server started
    elsewhere with ``workerhub serve --testing``. Not reset between tests.
``workerhub`` (function)
    The session server after ``reset()``: no workers, no stats, wall clock back to real time. Offers
    ``url``, ``client``, ``reset()`` and ``advance_clock(seconds)``.
``workerhub_url`` / ``workerhub_client`` (function)
    ``workerhub.url`` and ``workerhub.client`` (a :class:`~workerhub.testing.Client`), same reset.
``workerhub_hub`` (function, async; needs pytest-trio)
    An in-process :class:`~workerhub.actors.Hub`: no sockets, no thread. The test must run trio on a
    ``MockClock`` without autojump: request pytest-trio's ``mock_clock`` fixture too. Time then moves only
    through ``hub.advance_clock(seconds)``.
``workerhub_settings`` (session)
    ``{}`` by default: override it in your ``conftest.py`` to pass Settings fields (``default_timeout``,
    ``auto_register``, ...) to the session server and to ``workerhub_hub``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import trio
import trio.testing

from ..actors import Hub, open_hub
from ..config import Settings
from ._client import Client
from ._remote import RemoteServer, WorkerhubServer
from ._server import running_server

__all__ = [
    "workerhub",
    "workerhub_client",
    "workerhub_hub",
    "workerhub_server",
    "workerhub_settings",
    "workerhub_url",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("workerhub", "workerhub test server")
    group.addoption(
        "--workerhub-url",
        dest="workerhub_url",
        default=None,
        metavar="URL",
        help="run the workerhub fixtures against the server at URL (started with `workerhub serve "
        "--testing`) instead of one in this process",
    )


@pytest.fixture(scope="session")
def workerhub_settings() -> dict[str, Any]:
    """Settings fields for the session server and ``workerhub_hub``; override to change them."""
    return {}


@pytest.fixture(scope="session")
def workerhub_server(
    request: pytest.FixtureRequest, workerhub_settings: dict[str, Any]
) -> Iterator[WorkerhubServer]:
    """The session's workerhub (not reset between tests: use ``workerhub`` for that)."""
    url = request.config.getoption("workerhub_url")
    if url:
        remote = RemoteServer(url)
        try:
            remote.check()
        except Exception as exc:
            raise pytest.UsageError(f"--workerhub-url {url}: {exc}") from exc
        try:
            yield remote
        finally:
            remote.close()
    else:
        with running_server(**workerhub_settings) as server:
            yield server


@pytest.fixture
def workerhub(workerhub_server: WorkerhubServer) -> WorkerhubServer:
    """The session server, cleared: no workers, no stats, real wall time."""
    workerhub_server.reset()
    return workerhub_server


@pytest.fixture
def workerhub_url(workerhub: WorkerhubServer) -> str:
    """Base URL of the (cleared) server, e.g. ``http://127.0.0.1:41234``."""
    return workerhub.url


@pytest.fixture
def workerhub_client(workerhub: WorkerhubServer) -> Client:
    """A ready client of the (cleared) server: ``workerhub_client.call("workers.get_all")``."""
    return workerhub.client


async def workerhub_hub(workerhub_settings: dict[str, Any]) -> AsyncIterator[Hub]:
    """An in-process hub on the test's trio run (which must use a MockClock); closed after the test."""
    if not isinstance(trio.lowlevel.current_clock(), trio.testing.MockClock):
        pytest.fail(
            "workerhub_hub needs trio to run on a MockClock so that hub.advance_clock() can move time: "
            "request pytest-trio's `mock_clock` fixture in the test too, e.g. "
            "`async def test_x(workerhub_hub, mock_clock)`",
            pytrace=False,
        )
    settings = Settings.from_mapping({**workerhub_settings, "testing": True})
    async with open_hub(settings) as hub:
        yield hub


def _needs_pytest_trio() -> None:
    pytest.fail("the workerhub_hub fixture needs pytest-trio: pip install pytest-trio", pytrace=False)


try:
    from pytest_trio import trio_fixture  # type: ignore[import-untyped]
except ImportError:  # pytest-trio is optional: only the async fixture needs it
    workerhub_hub = pytest.fixture(_needs_pytest_trio, name="workerhub_hub")
else:
    workerhub_hub = trio_fixture(workerhub_hub)
