"""The public surface: what ``workerhub`` and ``workerhub.testing`` export, and what importing them costs."""

from __future__ import annotations

import subprocess
import sys

import pytest

import workerhub
import workerhub.testing

SERVER_STACK = ("quart", "quart_trio", "hypercorn", "jwt", "workerhub.server", "workerhub.api", "workerhub.actors")


def test_workerhub_exports() -> None:
    assert sorted(workerhub.__all__) == [
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
    for name in workerhub.__all__:
        assert getattr(workerhub, name) is not None, name
    assert set(workerhub.__all__) <= set(dir(workerhub))


def test_testing_exports() -> None:
    assert sorted(workerhub.testing.__all__) == [
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
    for name in workerhub.testing.__all__:
        assert getattr(workerhub.testing, name) is not None, name


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = workerhub.no_such_name  # type: ignore[attr-defined]


def test_one_version() -> None:
    """The version comes from the installed distribution (pyproject), nowhere else."""
    from importlib.metadata import version

    from workerhub.api.auth import SERVER_VERSION

    assert workerhub.__version__ == version("workerhub") == SERVER_VERSION


def _loaded_after(statement: str) -> set[str]:
    # A fresh interpreter: this one has long since imported the server.
    code = f"import sys; {statement}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


@pytest.mark.parametrize("module", ["workerhub", "workerhub.client", "workerhub.stats"])
def test_light_imports_leave_the_server_stack_out(module: str) -> None:
    loaded = _loaded_after(f"import {module}")
    assert module in loaded
    assert not {m for m in loaded if m.startswith(SERVER_STACK)}


def test_stats_core_does_not_import_trio() -> None:
    assert not {m for m in _loaded_after("import workerhub.stats") if m.split(".")[0] == "trio"}


def test_lazy_export_loads_its_module() -> None:
    loaded = _loaded_after("from workerhub import serve")
    assert {"workerhub.server", "hypercorn"} <= loaded
