"""HTTP only: parse, call one service, render."""

from __future__ import annotations

from flask import Flask

from lti_tool.db import request_session
from lti_tool.services.platforms import all_frame_origins
from lti_tool.store import RedisStore

from . import deep_linking_views, home, lti_views, registration_views
from .errors import init_errors
from .i18n import init_i18n
from .security import LocalRateLimiter, SharedRateLimiter, csp_nonce, init_security


def init_web(app: Flask) -> None:
    init_i18n(app)
    init_security(app)
    init_errors(app)
    app.extensions["dataide_frame_origins"] = lambda: all_frame_origins(request_session())
    store = app.extensions["dataide_store"]
    app.extensions["dataide_rate_limiter"] = (
        SharedRateLimiter(store) if isinstance(store, RedisStore) else LocalRateLimiter()
    )
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    # Imported once here rather than by every launch page render.
    macros = app.jinja_env.get_template("lti/_macros.html").module
    app.jinja_env.globals["locale_switch"] = macros.locale_switch  # type: ignore[attr-defined]
    app.register_blueprint(home.bp)
    app.register_blueprint(lti_views.bp)
    app.register_blueprint(registration_views.bp)
    app.register_blueprint(deep_linking_views.bp)
