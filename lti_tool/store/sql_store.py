"""Database implementation of the key/value store (the embedded default).

Each call is one statement in its own short transaction, on its own connection,
independent of the request's session: a consumed state stays consumed even if the
request fails later. SQLite (3.35+) and PostgreSQL get single-statement upserts and
``DELETE ... RETURNING``; other databases fall back to two statements.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
import weakref
from typing import Any, cast

from sqlalchemy import (
    Engine,
    Integer,
    String,
    Table,
    case,
    delete,
    insert,
    select,
    text,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.exc import IntegrityError

from lti_tool.models import KeyValueEntry

_TABLE = cast(Table, KeyValueEntry.__table__)
_PURGE_EVERY = 500


def _dialect_insert(engine: Engine) -> Any:
    name = engine.dialect.name
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    return None


# SQLite (3.24+ upsert, 3.35+ RETURNING) and PostgreSQL share this SQL exactly. Prepared
# once as text() so each call costs no statement construction.
_FAST_SQL = {
    "put": text(
        "INSERT INTO kv_entries (key, value, expires_at) VALUES (:k, :v, :e) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at"
    ),
    "get": text("SELECT value FROM kv_entries WHERE key = :k AND expires_at > :now"),
    "take": text("DELETE FROM kv_entries WHERE key = :k AND expires_at > :now RETURNING value"),
    "consume": text(
        "UPDATE kv_entries SET value = :m WHERE key = :k AND expires_at > :now AND value <> :m"
    ),
}


class _Held:
    """One thread's driver connection; collected (and its connection released) with the
    thread's local storage."""

    __slots__ = ("__weakref__", "raw")

    def __init__(self, raw: Any) -> None:
        self.raw = raw


class SqlStore:
    def __init__(self, engine: Engine, clock: object = time.time) -> None:
        self._engine = engine
        self._clock = clock
        self._writes = 0
        self._upsert_insert = _dialect_insert(engine)
        self._fast = self._upsert_insert is not None
        # SQLite's driver takes :name parameters as written; psycopg wants %(name)s.
        named = engine.dialect.name == "sqlite"
        self._raw_sql = {
            name: str(stmt) if named else re.sub(r":(\w+)", r"%(\1)s", str(stmt))
            for name, stmt in _FAST_SQL.items()
        }
        self._local = threading.local()
        self._connections: list[Any] = []
        self._connections_lock = threading.Lock()

    def close(self) -> None:
        """Close the per-thread connections (tests and shutdown)."""
        with self._connections_lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()

    def _hold(self) -> _Held:
        """A driver connection for this thread, given back to the pool when the thread
        ends (servers that start a thread per request would otherwise drain the pool)."""
        held = _Held(self._engine.raw_connection())
        with self._connections_lock:
            self._connections.append(held.raw)
        weakref.finalize(held, self._release, held.raw)
        return held

    def _release(self, raw: Any) -> None:
        with self._connections_lock:
            if raw not in self._connections:
                return  # closed already (close())
            self._connections.remove(raw)
        # A dead thread's connection that fails to close: nothing else to do with it.
        with contextlib.suppress(Exception):
            raw.close()

    def _run(self, name: str, params: dict[str, Any], write: bool) -> Any:
        """Run a prepared statement on this thread's own driver connection, in its own
        transaction; reconnect once if the server dropped the connection.

        The driver is called directly: these few statements run on every launch and
        SQLAlchemy's per-statement work cost more than the statements themselves.
        """
        sql = self._raw_sql[name]
        dbapi = self._engine.dialect.loaded_dbapi
        for attempt in (0, 1):
            held = getattr(self._local, "held", None)
            if held is None:
                held = self._local.held = self._hold()
            raw = held.raw
            try:
                cursor = raw.cursor()
                try:
                    cursor.execute(sql, params)
                    if name in ("get", "take"):
                        row = cursor.fetchone()
                        result: Any = row[0] if row else None
                    else:
                        result = cursor.rowcount
                finally:
                    cursor.close()
                raw.commit()
                return result
            except (dbapi.OperationalError, dbapi.InterfaceError):
                try:
                    raw.invalidate()
                finally:
                    self._local.held = None
                if attempt:
                    raise
            except dbapi.Error:
                raw.rollback()
                raise
        raise AssertionError("unreachable")

    def _now(self) -> float:
        return float(self._clock())  # type: ignore[operator]

    def put(self, key: str, value: str, ttl: int) -> None:
        expires = self._now() + ttl
        if self._fast:
            self._run("put", {"k": key, "v": value, "e": expires}, write=True)
            self._maybe_purge()
            return
        with self._engine.begin() as conn:
            if self._upsert_insert is not None:
                stmt = self._upsert_insert(_TABLE).values(key=key, value=value, expires_at=expires)
                conn.execute(
                    stmt.on_conflict_do_update(
                        index_elements=[_TABLE.c.key],
                        set_={"value": stmt.excluded.value, "expires_at": stmt.excluded.expires_at},
                    )
                )
            else:
                updated = conn.execute(
                    update(_TABLE)
                    .where(_TABLE.c.key == key)
                    .values(value=value, expires_at=expires)
                ).rowcount
                if not updated:
                    conn.execute(insert(_TABLE).values(key=key, value=value, expires_at=expires))
        self._maybe_purge()

    def get(self, key: str) -> str | None:
        if self._fast:
            return self._run("get", {"k": key, "now": self._now()}, write=False)
        with self._engine.connect() as conn:
            return conn.execute(
                select(_TABLE.c.value).where(_TABLE.c.key == key, _TABLE.c.expires_at > self._now())
            ).scalar_one_or_none()

    def take(self, key: str) -> str | None:
        now = self._now()
        if self._fast:
            return self._run("take", {"k": key, "now": now}, write=True)
        with self._engine.begin() as conn:
            if self._upsert_insert is not None:
                # Only the statement whose DELETE removed the row gets the value back.
                return conn.execute(
                    delete(_TABLE)
                    .where(_TABLE.c.key == key, _TABLE.c.expires_at > now)
                    .returning(_TABLE.c.value)
                ).scalar_one_or_none()
            value = conn.execute(
                select(_TABLE.c.value).where(_TABLE.c.key == key, _TABLE.c.expires_at > now)
            ).scalar_one_or_none()
            if value is None:
                return None
            deleted = conn.execute(delete(_TABLE).where(_TABLE.c.key == key)).rowcount
            return value if deleted == 1 else None

    def consume(self, key: str, marker: str) -> bool:
        if self._fast:
            return self._run("consume", {"k": key, "m": marker, "now": self._now()}, True) == 1
        with self._engine.begin() as conn:
            return (
                conn.execute(
                    update(_TABLE)
                    .where(
                        _TABLE.c.key == key,
                        _TABLE.c.expires_at > self._now(),
                        _TABLE.c.value != marker,
                    )
                    .values(value=marker)
                ).rowcount
                == 1
            )

    def add(self, key: str, value: str, ttl: int) -> bool:
        now = self._now()
        with self._engine.begin() as conn:
            conn.execute(delete(_TABLE).where(_TABLE.c.key == key, _TABLE.c.expires_at <= now))
            try:
                with conn.begin_nested():
                    conn.execute(insert(_TABLE).values(key=key, value=value, expires_at=now + ttl))
            except IntegrityError:
                return False
        self._maybe_purge()
        return True

    def touch(self, key: str, ttl: int) -> bool:
        now = self._now()
        with self._engine.begin() as conn:
            return bool(
                conn.execute(
                    update(_TABLE)
                    .where(_TABLE.c.key == key, _TABLE.c.expires_at > now)
                    .values(expires_at=now + ttl)
                ).rowcount
            )

    def incr(self, key: str, ttl: int) -> int:
        now = self._now()
        if self._upsert_insert is not None:
            stmt = self._upsert_insert(_TABLE).values(key=key, value="1", expires_at=now + ttl)
            expired = _TABLE.c.expires_at <= now
            stmt = stmt.on_conflict_do_update(
                index_elements=[_TABLE.c.key],
                set_={
                    "value": case(
                        (expired, "1"),
                        else_=sql_cast(sql_cast(_TABLE.c.value, Integer) + 1, String),
                    ),
                    "expires_at": case((expired, now + ttl), else_=_TABLE.c.expires_at),
                },
            ).returning(_TABLE.c.value)
            with self._engine.begin() as conn:
                return int(conn.execute(stmt).scalar_one())
        for _ in range(3):
            with self._engine.begin() as conn:
                conn.execute(delete(_TABLE).where(_TABLE.c.key == key, _TABLE.c.expires_at <= now))
                row = conn.execute(
                    update(_TABLE)
                    .where(_TABLE.c.key == key)
                    .values(value=text("CAST(CAST(value AS INTEGER) + 1 AS TEXT)"))
                    .returning(_TABLE.c.value)
                ).first()
                if row is not None:
                    return int(row[0])
                try:
                    with conn.begin_nested():
                        conn.execute(
                            insert(_TABLE).values(key=key, value="1", expires_at=now + ttl)
                        )
                    return 1
                except IntegrityError:
                    continue
        raise RuntimeError(f"could not increment counter {key!r}")

    def delete(self, key: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(_TABLE).where(_TABLE.c.key == key))

    def ping(self) -> None:
        with self._engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def purge_expired(self) -> int:
        with self._engine.begin() as conn:
            return int(
                conn.execute(delete(_TABLE).where(_TABLE.c.expires_at <= self._now())).rowcount
            )

    def _maybe_purge(self) -> None:
        # Expired states, launches and counters are deleted in passing, so the table
        # stays small without a cron job.
        self._writes += 1
        if self._writes % _PURGE_EVERY == 0:
            self.purge_expired()
