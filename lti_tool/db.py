"""Engine and sessions. One session per request (or per CLI command), closed at teardown."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


class Database:
    """Holds the engine and session factory for one application."""

    def __init__(self, url: str, *, threads: int = 0) -> None:
        """``threads``: extra threads that use the database beside the request threads
        (the grade delivery threads, each holding a store connection and a session)."""
        self.url = url
        # No pre-ping: it costs a round trip per request. Connections are recycled instead,
        # and a connection dropped by the server fails one request, not the next ones.
        kwargs: dict[str, Any] = {"pool_recycle": 1800}
        if url.startswith("sqlite"):
            # Several gunicorn workers share the file: wait for locks instead of failing.
            kwargs["connect_args"] = {"timeout": 15}
        if threads:
            kwargs["pool_size"] = 5 + 2 * threads
        self.engine: Engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.session_factory = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed on success and rolled back on error."""
        with self.session_factory() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def init_app(self, app: Flask) -> None:
        app.extensions["dataide_db"] = self
        app.teardown_appcontext(_close_request_session)

    def dispose(self) -> None:
        self.engine.dispose()


def dispose_app(app: Flask) -> None:
    """Close the application's store connections and database pool."""
    store = app.extensions.get("dataide_store")
    if store is not None:
        store.close()
    get_db(app).dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def get_db(app: Flask | None = None) -> Database:
    return (app or current_app).extensions["dataide_db"]


def request_session() -> Session:
    """The session of the current request; the caller commits."""
    if "_db_session" not in g:
        g._db_session = get_db().session_factory()
    return g._db_session


def _close_request_session(_exc: BaseException | None) -> None:
    session: Session | None = g.pop("_db_session", None)
    if session is not None:
        session.rollback()
        session.close()
