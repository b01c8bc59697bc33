"""Short-lived shared state: login states, launch data, replay marks, rate limits.

Redis when ``REDIS_URL`` is set, else the database. Every operation is atomic across
processes and hosts, which is what makes single-use states and nonces hold with several
gunicorn workers.
"""

from __future__ import annotations

from typing import Protocol

from .redis_store import RedisStore
from .sql_store import SqlStore


class KeyValueStore(Protocol):
    """Values are strings; ``ttl`` is in seconds."""

    def put(self, key: str, value: str, ttl: int) -> None: ...

    def get(self, key: str) -> str | None: ...

    def take(self, key: str) -> str | None:
        """Return the value and delete it; of concurrent callers exactly one gets it."""
        ...

    def consume(self, key: str, marker: str) -> bool:
        """Replace a live value by ``marker`` unless it already is; of concurrent callers
        exactly one gets True. The key keeps its expiry, so ``get`` then shows the marker."""
        ...

    def add(self, key: str, value: str, ttl: int) -> bool:
        """Set the key only if absent (or expired); True when this call set it."""
        ...

    def touch(self, key: str, ttl: int) -> bool:
        """Extend a live key's expiry; False when it is gone."""
        ...

    def incr(self, key: str, ttl: int) -> int:
        """Increment a counter that expires ``ttl`` seconds after its first increment."""
        ...

    def delete(self, key: str) -> None: ...

    def ping(self) -> None:
        """Raise when the backing service does not answer."""
        ...

    def close(self) -> None:
        """Release connections (tests and shutdown)."""
        ...


__all__ = ["KeyValueStore", "RedisStore", "SqlStore"]
