"""Request ids, security headers (CSP with per-registration frame-ancestors), rate limits."""

from __future__ import annotations

import re
import secrets
import threading
import time

from flask import Flask, Response, current_app, g, request

from lti_tool.domain.urls import origin_of
from lti_tool.store import KeyValueStore

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def csp_nonce() -> str:
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return str(g.csp_nonce)


def allow_framing_by(*origins: str) -> None:
    """Let these origins frame the current response (the launch's registration)."""
    g.frame_origins = [o for o in origins if o]


def allow_form_action(*urls: str) -> None:
    """Let forms of the current response post to these URLs (deep-linking return)."""
    g.form_actions = [u for u in urls if u]


class SharedRateLimiter:
    """Counts in the shared store (Redis): one limit across every process and host."""

    def __init__(self, store: KeyValueStore) -> None:
        self._store = store

    def hit(self, key: str) -> int:
        return self._store.incr("rl:" + key, 60)


class LocalRateLimiter:
    """Counts in this process, for the embedded default: no database write per login.

    With N worker processes a client gets at most N times the limit.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._window = -1

    def hit(self, key: str) -> int:
        window = int(time.time() // 60)
        with self._lock:
            if window != self._window:
                self._counts.clear()
                self._window = window
            self._counts[key] = self._counts.get(key, 0) + 1
            return self._counts[key]


def rate_limited(limiter: SharedRateLimiter | LocalRateLimiter, bucket: str, limit: int) -> bool:
    """Count a hit of this client in a one-minute window; True when over ``limit``."""
    window = int(time.time() // 60)
    client = request.remote_addr or "unknown"
    return limiter.hit(f"{bucket}:{client}:{window}") > limit


def init_security(app: Flask) -> None:
    @app.before_request
    def _request_id() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else secrets.token_hex(8)
        g.request_started = time.perf_counter()

    @app.after_request
    def _headers(response: Response) -> Response:
        frame_origins = g.get("frame_origins")
        if frame_origins is None:
            # Pages shown before a launch is valid (errors, cookie fallback) may be framed
            # by any registered platform, never by anyone else.
            try:
                frame_origins = current_app.extensions["dataide_frame_origins"]()
            except Exception:  # database down: answer anyway, framable by no one else
                current_app.logger.warning("frame origins unavailable", exc_info=True)
                frame_origins = []
        ancestors = " ".join(["'self'", *sorted(set(frame_origins))])
        form_actions = " ".join(["'self'", *(origin_of(u) or u for u in g.get("form_actions", []))])
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; "
            f"script-src 'self' 'nonce-{csp_nonce()}'; "
            "style-src 'self'; img-src 'self' data:; font-src 'self'; "
            "connect-src 'self'; object-src 'none'; base-uri 'none'; "
            f"form-action {form_actions}; frame-ancestors {ancestors}"
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "strict-origin-when-cross-origin"
        response.headers["X-Request-ID"] = g.get("request_id", "")
        if request.path.startswith("/lti/") and request.path != "/lti/jwks":
            response.headers["Cache-Control"] = "no-store"
        return response
