"""A tiny threaded HTTP server on 127.0.0.1 for the platform harness.

Contract:

* ``LoopbackServer(handler)`` binds a free port on 127.0.0.1 at construction (so URLs are known
  before ``start()``), serves in a daemon thread after ``start()`` and frees the port on
  ``stop()``; ``stop()`` is idempotent. A started server must be stopped (its thread keeps it
  alive); a never-started one also frees its port when garbage-collected.
* For each request the server calls ``handler(Request)`` and writes the returned ``Response``.
  A handler exception becomes a 500 with the exception text (tests then see why).
* Query strings and ``application/x-www-form-urlencoded`` bodies are parsed single-valued
  (last value wins), which is what LTI and OAuth parameters are. ``Request.body`` always holds
  the raw body (JSON service requests parse it themselves); ``form`` stays empty for them.
* GET, HEAD, POST, PUT and DELETE reach the handler. A client that hung up before the answer
  (a timed-out service call) is ignored rather than reported.
"""

from __future__ import annotations

import json
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass(frozen=True)
class Request:
    """One parsed HTTP request."""

    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""


@dataclass(frozen=True)
class Response:
    """What a handler returns; ``headers`` are added to Content-Type/Length."""

    status: int
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, value: Any, headers: dict[str, str] | None = None) -> Response:
        """A JSON response (``Cache-Control: no-store``, as for tokens and keysets in tests)."""
        merged = {"Cache-Control": "no-store", **(headers or {})}
        return cls(status, json.dumps(value).encode("utf-8"), "application/json", merged)

    @classmethod
    def html(cls, status: int, page: tuple[str, str]) -> Response:
        """An HTML page from ``pages``: ``(html, content_security_policy)``."""
        html, csp = page
        headers = {"Content-Security-Policy": csp, "Cache-Control": "no-store"}
        return cls(status, html.encode("utf-8"), "text/html; charset=utf-8", headers)

    @classmethod
    def text(cls, status: int, message: str) -> Response:
        """A plain-text response, used for errors."""
        return cls(status, message.encode("utf-8"), "text/plain; charset=utf-8")


Handler = Callable[[Request], Response]


def _make_request_handler(handler: Handler) -> type[BaseHTTPRequestHandler]:
    class _RequestHandler(BaseHTTPRequestHandler):
        server_version = "LtiPlatformHarness/1.0"

        def _dispatch(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            form: dict[str, str] = {}
            content_type = self.headers.get("Content-Type", "")
            if content_type.startswith("application/x-www-form-urlencoded"):
                form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
            request = Request(
                method=self.command,
                path=parts.path,
                query=dict(parse_qsl(parts.query, keep_blank_values=True)),
                form=form,
                headers={key.lower(): value for key, value in self.headers.items()},
                body=body,
            )
            try:
                response = handler(request)
            except Exception as exc:  # a harness bug must reach the client, not kill the thread
                response = Response.text(500, f"{type(exc).__name__}: {exc}")
            try:
                self.send_response(response.status)
                self.send_header("Content-Type", response.content_type)
                self.send_header("Content-Length", str(len(response.body)))
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(response.body)
            except (BrokenPipeError, ConnectionResetError):
                # The client gave up (say, a timeout shorter than an injected delay).
                self.close_connection = True

        do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _dispatch

        def log_message(self, format: str, *args: Any) -> None:
            # Silence per-request stderr logging; tests assert on counters instead.
            return

    return _RequestHandler


class LoopbackServer:
    """A ``ThreadingHTTPServer`` on 127.0.0.1 with a random free port."""

    def __init__(self, handler: Handler) -> None:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_request_handler(handler))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None
        self._closed = False
        # A server that is dropped without stop() (say, a Platform only used for login_params)
        # would leak its bound socket and raise ResourceWarning, an error under -W error.
        # The finalizer holds only the socket; a *running* server stays reachable from its
        # thread, so this never closes a socket under a live serve_forever loop.
        self._finalizer = weakref.finalize(self, self._httpd.socket.close)
        self._finalizer.atexit = False

    @property
    def port(self) -> int:
        """The bound TCP port."""
        return int(self._httpd.server_address[1])

    def start(self) -> None:
        """Serve in a daemon thread (no-op when already serving)."""
        if self._closed:
            raise RuntimeError("server was stopped; create a new one")
        if self._thread is None:
            # A short poll interval keeps stop() (which waits for one poll) fast in tests.
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"lti-platform-{self.port}",
                daemon=True,
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
        self._httpd.server_close()
        self._finalizer.detach()
