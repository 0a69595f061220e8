"""The web dashboard: a read-only single-page app served from static files inside the package.

``GET /`` is the page, ``GET /ui/<file>`` its modules, styles and the vendored uPlot. The app is a plain
client of the JSON API (``/v2.4/workers.*``, ``auth.login``), so it shows what any client would get and
needs no server-side state; see docs/dashboard.md.
"""

from __future__ import annotations

from pathlib import Path

from quart import Quart, Response, send_from_directory

__all__ = ["STATIC_DIR", "mount_dashboard"]

STATIC_DIR = Path(__file__).parent / "static"

# The page loads only its own files; uPlot sets inline styles on its elements.
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # revalidate each load (ETag): an upgraded server never runs against stale modules
    "Cache-Control": "no-cache",
}


def mount_dashboard(app: Quart) -> None:
    """Serve the dashboard on ``app``: ``GET /`` and ``GET /ui/<path>``, without ClearML auth."""

    async def index() -> Response:
        return await _file("index.html")

    async def asset(path: str) -> Response:
        return await _file(path)

    app.add_url_rule("/", "dashboard", index, methods=["GET"])
    app.add_url_rule("/ui/<path:path>", "dashboard_asset", asset, methods=["GET"])


async def _file(path: str) -> Response:
    # send_from_directory refuses paths outside STATIC_DIR (404), so "../" cannot reach other files
    response = await send_from_directory(STATIC_DIR, path)
    response.headers.update(_HEADERS)
    return response
