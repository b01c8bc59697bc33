"""Database implementation of the key/value store (the embedded default).

Each call runs in its own short transaction on its own connection, independent of the
request's session, so a consumed state stays consumed even if the request fails later.
"""

from __future__ import annotations

import time
from typing import cast

from sqlalchemy import Engine, Table, delete, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from lti_tool.models import KeyValueEntry

_TABLE = cast(Table, KeyValueEntry.__table__)
_PURGE_EVERY = 500


class SqlStore:
    def __init__(self, engine: Engine, clock: object = time.time) -> None:
        self._engine = engine
        self._clock = clock
        self._writes = 0

    def _now(self) -> float:
        return float(self._clock())  # type: ignore[operator]

    def put(self, key: str, value: str, ttl: int) -> None:
        expires = self._now() + ttl
        with self._engine.begin() as conn:
            updated = conn.execute(
                update(_TABLE).where(_TABLE.c.key == key).values(value=value, expires_at=expires)
            ).rowcount
            if not updated:
                try:
                    with conn.begin_nested():
                        conn.execute(
                            insert(_TABLE).values(key=key, value=value, expires_at=expires)
                        )
                except IntegrityError:
                    conn.execute(
                        update(_TABLE)
                        .where(_TABLE.c.key == key)
                        .values(value=value, expires_at=expires)
                    )
        self._maybe_purge()

    def get(self, key: str) -> str | None:
        with self._engine.connect() as conn:
            return conn.execute(
                select(_TABLE.c.value).where(_TABLE.c.key == key, _TABLE.c.expires_at > self._now())
            ).scalar_one_or_none()

    def take(self, key: str) -> str | None:
        with self._engine.begin() as conn:
            value = conn.execute(
                select(_TABLE.c.value).where(_TABLE.c.key == key, _TABLE.c.expires_at > self._now())
            ).scalar_one_or_none()
            if value is None:
                return None
            # Only the transaction whose DELETE removed the row owns the value.
            deleted = conn.execute(delete(_TABLE).where(_TABLE.c.key == key)).rowcount
            return value if deleted == 1 else None

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
