"""The real tool served inside an LMS course page on another site, for browser tests.

The LMS is the Open edX-backed platform harness on http://127.0.0.1:<port>; the tool is the
real application (SQLite) on http://localhost:<port>: two sites, so the whole OIDC chain (tool
login -> platform /auth -> tool launch) runs in a third-party iframe.

``serve_embedded`` starts both; ``wait_for_tool_page`` waits for the iframe to show a page;
``Embedded.lms()`` is the Flask test client of the same application and database, for the
steps a test only needs as set-up (a placement, another person's launch).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Frame, Page
from werkzeug.serving import BaseWSGIServer

from lti_tool.db import dispose_app
from tests.conftest import build_app, make_settings
from tests.functional.conftest import Lms, register, tool_public_key
from tests.functional.platform import Platform

from .harness import _QuietRequestHandler

WAIT_S = 10.0

# What a page shows, read in one round trip: enough to decide and to explain a failure.
_SNAPSHOT_JS = """() => {
    const h1 = document.querySelector("h1");
    return {
        ready: document.readyState,
        lang: document.documentElement.lang,
        h1: h1 ? h1.innerText : null,
        text: document.body ? document.body.innerText : "",
        stale: window.__toolPageLeft === true,
    };
}"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Embedded:
    app: Flask
    tool_url: str
    platform: Platform

    def lms(self) -> Lms:
        """The same tool and platform driven through the Flask test client (no browser)."""
        return Lms(app=self.app, platform=self.platform, client=self.app.test_client())


class _ToolRequestHandler(_QuietRequestHandler):
    # A socket Chromium opened ahead of time and never used frees its thread after this.
    timeout = 5

    def log_error(self, format: str, *args: Any) -> None:
        if not format.startswith("Request timed out"):  # that unused socket: not an error
            super().log_error(format, *args)


class _FixedThreadsServer(BaseWSGIServer):
    """Werkzeug's server answering on a fixed set of threads, one request per connection."""

    def __init__(self, host: str, port: int, app: Flask, threads: int) -> None:
        super().__init__(host, port, app, handler=_ToolRequestHandler)
        self._threads = ThreadPoolExecutor(threads, thread_name_prefix=f"tool {host}:{port}")

    def process_request(self, request: Any, client_address: Any) -> None:
        self._threads.submit(self._answer, request, client_address)

    def _answer(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)

    def server_close(self) -> None:
        super().server_close()
        self._threads.shutdown(wait=False, cancel_futures=True)


@contextmanager
def serve_tool(app: Flask, host: str, port: int, threads: int = 6) -> Iterator[str]:
    """Serve the tool on a fixed set of threads, as gunicorn workers do; yield its base URL.

    Not ``harness.serve_wsgi``'s thread per request: the tool's SQL store keeps one pooled
    database connection per thread and a thread that ends never gives it back, so after
    about 15 requests (the pool's size plus overflow) each request would wait 30 s for a
    connection, then fail. Six threads (Chromium's connections per host) hold at most six
    such connections, leaving the pool room for every request's own session.
    """
    server = _FixedThreadsServer(host, port, app, threads)
    thread = threading.Thread(target=server.serve_forever, name=f"tool {host}:{port}", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@contextmanager
def serve_embedded(tmp_dir: Path) -> Iterator[Embedded]:
    """The tool on http://localhost:<port> (database in ``tmp_dir``), registered with a
    platform on 127.0.0.1; both stop on exit."""
    port = free_port()
    tool_url = f"http://localhost:{port}"
    app = build_app(make_settings(tmp_dir, base_url=tool_url))
    try:
        with (
            Platform(tool_base_url=tool_url, tool_public_key_pem=tool_public_key(app)) as platform,
            serve_tool(app, host="localhost", port=port) as served,
        ):
            assert served == tool_url
            assert urlsplit(platform.base_url).hostname == "127.0.0.1"
            register(app, platform)
            yield Embedded(app, tool_url, platform)
    finally:
        dispose_app(app)


def snapshot(frame: Frame) -> dict[str, Any]:
    result: dict[str, Any] = frame.evaluate(_SNAPSHOT_JS)
    return result


def mark_stale(frame: Frame) -> None:
    """Mark the frame's current document, so ``wait_for_tool_page`` waits for the next one
    (a form posted to the URL it already shows, with the same heading)."""
    frame.evaluate("() => { window.__toolPageLeft = true; }")


def describe(frame: Frame | None, shown: dict[str, Any] | None) -> str:
    if frame is None:
        return "the course page has no tool iframe"
    if shown is None:
        return f"frame at {frame.url} (not readable)"
    return (
        f"frame at {frame.url}, lang={shown['lang']!r}, h1={shown['h1']!r}, text:\n"
        f"{shown['text'][:1500]}"
    )


def wait_for_tool_page(page: Page, url: str, heading: str, what: str) -> Frame:
    """Wait until the course page's iframe shows ``url`` (no query or fragment) with
    ``heading`` in its h1.

    A document marked by ``mark_stale`` never matches. Fails after ``WAIT_S`` with what the
    frame shows instead.
    """
    deadline_ms = WAIT_S * 1000
    waited = 0.0
    frame: Frame | None = None
    shown: dict[str, Any] | None = None
    while waited < deadline_ms:
        children = page.main_frame.child_frames
        frame = children[0] if children else None
        shown = None
        if frame is not None:
            try:
                shown = snapshot(frame)
            except PlaywrightError:  # navigating: the document went away mid-evaluation
                shown = None
            if (
                shown is not None
                and shown["ready"] == "complete"
                and not shown["stale"]
                and frame.url.split("#", 1)[0].split("?", 1)[0] == url
                and heading in (shown["h1"] or "")
            ):
                return frame
        page.wait_for_timeout(100)
        waited += 100
    pytest.fail(
        f"{what}: no {heading!r} page at {url} after {WAIT_S:.0f}s; {describe(frame, shown)}",
        pytrace=False,
    )
