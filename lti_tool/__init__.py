"""DATAide LTI tool: an LTI 1.3 Advantage tool for Moodle, Open edX and any LTI platform."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from .content.catalog import load_catalog_cached
from .content.diagnostics import Diagnostic, has_errors
from .db import Database
from .logs import configure_logging
from .lti import LtiTool
from .services.grade_worker import GradeWorker
from .services.published import PublishedContent
from .settings import Settings
from .store import KeyValueStore, RedisStore, SqlStore

__all__ = ["ContentError", "create_app"]


class ContentError(RuntimeError):
    """The content tree has errors: the app refuses to start and says which."""

    def __init__(self, diagnostics: list[Diagnostic], root: str) -> None:
        errors = [d for d in diagnostics if d.severity == "error"]
        shown = "\n".join(d.text() for d in errors[:20])
        more = f"\n... and {len(errors) - 20} more" if len(errors) > 20 else ""
        super().__init__(
            f"the content in {root} has {len(errors)} error(s); fix them "
            f"(`lti-tool content check` shows the same list):\n{shown}{more}"
        )
        self.diagnostics = diagnostics


def create_app(settings: Settings | None = None, *, store: KeyValueStore | None = None) -> Flask:
    """Build the application. Wiring only: no work happens at import time."""
    settings = settings or Settings.from_env()
    instance = Path(settings.instance_path).resolve()
    app = Flask(
        __name__,
        instance_path=str(instance),
        template_folder="web/templates",
        static_folder="web/static",
    )
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_HTTPONLY=True,
        TEMPLATES_AUTO_RELOAD=False,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]
    configure_logging(settings.log_level, settings.secret_key)
    if settings.database_url.startswith("sqlite:///"):
        Path(settings.database_url.removeprefix("sqlite:///")).parent.mkdir(
            parents=True, exist_ok=True
        )

    result = load_catalog_cached(Path(settings.content_path))
    if has_errors(result.diagnostics):
        raise ContentError(result.diagnostics, settings.content_path)

    db = Database(settings.database_url, threads=settings.grade_worker_concurrency)
    db.init_app(app)
    if store is None:
        store = RedisStore(settings.redis_url) if settings.redis_url else SqlStore(db.engine)
    app.extensions["dataide_settings"] = settings
    app.extensions["dataide_catalog"] = result.catalog
    app.extensions["dataide_store"] = store
    tool = LtiTool(settings, store)
    app.extensions["dataide_lti"] = tool
    app.extensions["dataide_published"] = PublishedContent(Path(settings.content_path))
    worker = GradeWorker(
        db.session_factory,
        tool.ags,
        concurrency=settings.grade_worker_concurrency,
        poll_seconds=settings.grade_worker_poll_seconds,
    )
    app.extensions["dataide_grade_worker"] = worker
    app.extensions["dataide_grade_wake"] = _grade_wake(worker, settings.grade_worker == "thread")

    if settings.trusted_proxies:
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n, x_prefix=n
        )

    from .web import init_web

    init_web(app)
    return app


def _grade_wake(worker: GradeWorker, in_process: bool) -> Callable[[], None]:
    """What a new grade calls: start (once, in this process: after gunicorn's fork) and
    wake the in-process worker; nothing when ``lti-tool worker`` processes deliver."""

    def wake() -> None:
        if in_process:
            worker.start()
            worker.wake()

    return wake
