"""Shared fixtures: settings, applications on SQLite or PostgreSQL + Redis, services."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import create_engine, text

from lti_tool import create_app
from lti_tool.content.lock import ItemSource, all_sources
from lti_tool.db import dispose_app, get_db
from lti_tool.lti.keys import ensure_current_key
from lti_tool.models import Base
from lti_tool.services.content import sync_from_lock
from lti_tool.settings import Settings, generate_secrets
from lti_tool.store import RedisStore

_SECRETS = generate_secrets()


def service_unavailable(reason: str) -> None:
    """Skip a test that needs a service, or fail it in CI where every service must run."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: services must be available)")
    pytest.skip(reason)


def postgres_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL", "")
    if not url:
        service_unavailable("TEST_DATABASE_URL is not set")
    try:
        engine = create_engine(url)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        service_unavailable(f"PostgreSQL unreachable at TEST_DATABASE_URL: {exc}")
    return url


def redis_url() -> str:
    url = os.environ.get("TEST_REDIS_URL", "")
    if not url:
        service_unavailable("TEST_REDIS_URL is not set")
    try:
        RedisStore(url).ping()
    except Exception as exc:
        service_unavailable(f"Redis unreachable at TEST_REDIS_URL: {exc}")
    return url


def reset_postgres(url: str) -> None:
    """Empty the test database completely, whatever an earlier test left in it."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    base = Settings(
        environment="testing",
        base_url="http://127.0.0.1:5999",
        database_url=f"sqlite:///{tmp_path / 'test.sqlite3'}",
        secret_key=_SECRETS["SECRET_KEY"],
        key_encryption_key=_SECRETS["KEY_ENCRYPTION_KEY"],
        instance_path=str(tmp_path / "instance"),
        content_path=str(Path(__file__).resolve().parents[1]),
        lti_leeway_seconds=30,
        # Tests drive grade delivery themselves (GradeWorker.run_until_idle).
        grade_worker="off",
    )
    return base.with_overrides(**overrides) if overrides else base


def build_app(settings: Settings) -> Flask:
    app = create_app(settings)
    db = get_db(app)
    Base.metadata.create_all(db.engine)
    with db.session() as session:
        ensure_current_key(session, settings.key_encryption_key)
        root = Path(settings.content_path)
        sync_from_lock(session, root, _content_sources(root))
    return app


@functools.cache
def _content_sources(root: Path) -> list[ItemSource]:
    """The content tree's canonical sources, read once per test session."""
    return all_sources(root)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    app = build_app(settings)
    yield app
    dispose_app(app)


@pytest.fixture(params=["sqlite", "postgres+redis"])
def backend_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    """The application on the embedded default, then on PostgreSQL and Redis."""
    if request.param == "sqlite":
        app = build_app(make_settings(tmp_path))
    else:
        pg, rd = postgres_url(), redis_url()
        reset_postgres(pg)
        RedisStore(rd).flush_prefix()
        app = build_app(make_settings(tmp_path, database_url=pg, redis_url=rd))
    yield app
    dispose_app(app)


@pytest.fixture
def client(app: Flask):  # type: ignore[no-untyped-def]
    return app.test_client()
