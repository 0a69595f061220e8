"""Browser fixtures: Debian's chromium driven by Playwright's own driver (no browser download).

The tests skip, with the reason, only where chromium or playwright is missing; CI (.ci/run) installs both.
Screenshots go to a temporary directory, or to ``$DASHBOARD_SCREENSHOTS`` when set.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = (
    os.environ.get("WORKERHUB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium; .ci/run does it in CI)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (the test extra)"
    )
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


class Page:
    """A browser tab on the dashboard that records console errors, page errors and API requests."""

    def __init__(self, page: Any, base_url: str, shots: Path) -> None:
        self.page = page
        self.base_url = base_url
        self.shots = shots
        self.errors: list[str] = []
        self.requests: list[tuple[str, str, Any]] = []
        page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        page.on("request", self._record)

    def _record(self, request: Any) -> None:
        *_, version, call = request.url.split("/")
        if not version.startswith("v2."):
            version = ""
        if version or call == "auth.login":
            self.requests.append((version, call, request.post_data_json))

    def calls(self, name: str, version: str = "v2.34") -> list[Any]:
        """Bodies of the API calls ``name`` made on the ``version`` path (e.g. ``"v2.4"``)."""
        return [body for v, call, body in self.requests if call == name and v in (version, "")]

    def goto(self, fragment: str = "") -> None:
        self.page.goto(f"{self.base_url}/{fragment}")

    def screenshot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def points(self, chart: str) -> tuple[int, int]:
        """(series, points) drawn in ``#chart-<chart>``, once it has data."""
        el = self.page.wait_for_selector(f"#chart-{chart}[data-points]")
        return int(el.get_attribute("data-series")), int(el.get_attribute("data-points"))


@pytest.fixture()
def shots(tmp_path: Path) -> Path:
    target = os.environ.get("DASHBOARD_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        return Path(target)
    return tmp_path


def open_page(browser: Any, url: str, shots: Path, *, scheme: str = "light", csp: bool = False) -> Page:
    """A new tab. The page's Content-Security-Policy forbids eval, which Playwright's ``wait_for_function``
    needs: it is bypassed unless ``csp`` (then wait with selectors only)."""
    context = browser.new_context(
        viewport={"width": 1400, "height": 1000}, color_scheme=scheme, bypass_csp=not csp
    )
    page = context.new_page()
    page.set_default_timeout(20_000)
    return Page(page, url, shots)
