"""#13 item 1: ``persistence`` and ``actors`` do not import each other (both import ``workerhub.hubstate``);
checked on the source, since importing any ``workerhub`` module still loads the package's server today."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import workerhub

ROOT = Path(workerhub.__file__).parent


def imported(package: str) -> set[tuple[str, str]]:
    """``(file, absolute module)`` for every import in ``workerhub/<package>/*.py``."""
    out = set()
    for path in sorted((ROOT / package).glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = ["workerhub", package][: max(0, 2 - node.level + 1)]
                    module = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    module = node.module or ""
                out.add((path.name, module))
            elif isinstance(node, ast.Import):
                out.update((path.name, alias.name) for alias in node.names)
    return out


@pytest.mark.parametrize(
    ("package", "forbidden"), [("persistence", "workerhub.actors"), ("actors", "workerhub.persistence")]
)
def test_no_import_between_actors_and_persistence(package: str, forbidden: str) -> None:
    bad = sorted(f"{f} imports {m}" for f, m in imported(package) if m == forbidden or m.startswith(forbidden + "."))
    assert not bad, bad
    assert any(m == "workerhub.hubstate" for _f, m in imported(package)), "the shared types come from hubstate"
