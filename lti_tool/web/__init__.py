"""HTTP only: parse, call one service, render."""

from __future__ import annotations

from flask import Flask

from lti_tool.content.render_cache import RenderCache
from lti_tool.db import request_session
from lti_tool.services.platforms import all_frame_origins
from lti_tool.store import RedisStore

from . import deep_linking_views, home, learn_views, lti_views, registration_views
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
    app.register_blueprint(learn_views.bp)
    app.extensions["dataide_learner_render_cache"] = RenderCache(
        None,
        question_html=learn_views.question_marker,
        experiment_html=learn_views.experiment_card,
        media_url=learn_views.media_url,
    )
    from .preview import init_content_templates

    init_content_templates(app)
    if app.extensions["dataide_settings"].grade_worker == "thread":
        started: list[bool] = []

        @app.before_request
        def _start_grade_worker() -> None:
            # After gunicorn's fork, in the process that serves: pending grades left by
            # an earlier run are delivered without waiting for a new one.
            if not started:
                started.append(True)
                app.extensions["dataide_grade_worker"].start()
