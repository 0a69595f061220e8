"""The installed distribution's version: the one source is ``[project] version`` in pyproject.toml."""

from __future__ import annotations

import importlib.metadata

__all__ = ["__version__"]

try:
    __version__: str = importlib.metadata.version("workerhub")
except importlib.metadata.PackageNotFoundError:  # a source tree on sys.path that was never installed
    __version__ = "0.0.0"
