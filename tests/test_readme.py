"""The README's curl session, replayed against a real server on its default settings.

Each ``$ curl ...`` line of the README's ``console`` block is sent as written (path and body) and its
printed output must match what the server answers, filtered the way the line's ``jq`` filter says. A
README edit that adds a filter this file does not know fails loudly rather than being skipped.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from workerhub.testing import running_server

README = Path(__file__).resolve().parent.parent / "README.md"

# The jq filters the README uses, in Python; each returns the lines jq -c would print.
FILTERS: dict[str, Callable[[Any], list[Any]]] = {
    ".data": lambda reply: [reply["data"]],
    ".data.workers[] | {id, tags, system_tags}": lambda reply: [
        {"id": w["id"], "tags": w["tags"], "system_tags": w["system_tags"]} for w in reply["data"]["workers"]
    ],
}


def session() -> list[tuple[str, str, str, list[Any]]]:
    """(path, raw body, jq filter, expected lines) for each command of the README's curl session."""
    block = re.search(r"## A session with curl\s+```console\n(.*?)```", README.read_text(), re.S)
    assert block, "README has no curl session"
    steps: list[tuple[str, str, str, list[Any]]] = []
    for line in block.group(1).splitlines():
        if line.startswith("$ "):
            curl, _, jq = line[2:].partition(" | ")
            args = shlex.split(curl)
            assert args[:2] == ["curl", "-s"] and args[3] == "-d", line
            path = "/" + args[2].split("/", 1)[1]
            steps.append((path, args[4], shlex.split(jq)[2], []))
        elif line.strip():
            steps[-1][3].append(json.loads(line))
    return steps


STEPS = session()


def test_the_session_has_every_endpoint_it_shows() -> None:
    assert len(STEPS) >= 8
    assert all(expected for *_, expected in STEPS), "every command shows its output"


def test_readme_session_replays() -> None:
    # The README's server: `workerhub serve` on its defaults (today's dialect), state in memory. One test,
    # because the session's steps depend on each other in order.
    with running_server() as server:
        for path, body, jq, expected in STEPS:
            assert jq in FILTERS, f"teach tests/test_readme.py the jq filter {jq!r}"
            # what curl -d sends: the body as given, labelled as a form; ClearML servers read it as JSON
            reply = httpx.post(
                server.url + path,
                content=body,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                timeout=10,
            )
            assert reply.status_code == 200, (path, reply.text)
            assert FILTERS[jq](reply.json()) == expected, path
