"""Redis implementation of the key/value store."""

from __future__ import annotations

import redis


class RedisStore:
    def __init__(self, url: str, prefix: str = "dataide:") -> None:
        self._redis = redis.Redis.from_url(
            url, decode_responses=True, socket_timeout=5, socket_connect_timeout=5
        )
        self._prefix = prefix

    def _k(self, key: str) -> str:
        return self._prefix + key

    def put(self, key: str, value: str, ttl: int) -> None:
        self._redis.set(self._k(key), value, ex=max(1, int(ttl)))

    def get(self, key: str) -> str | None:
        return self._redis.get(self._k(key))  # type: ignore[return-value]

    def take(self, key: str) -> str | None:
        return self._redis.getdel(self._k(key))  # type: ignore[return-value]

    def consume(self, key: str, marker: str) -> bool:
        # SET ... XX KEEPTTL GET swaps atomically and returns the old value: the caller
        # that saw something other than the marker is the one that consumed it.
        old = self._redis.set(self._k(key), marker, xx=True, keepttl=True, get=True)
        return old is not None and old != marker

    def add(self, key: str, value: str, ttl: int) -> bool:
        return bool(self._redis.set(self._k(key), value, ex=max(1, int(ttl)), nx=True))

    def touch(self, key: str, ttl: int) -> bool:
        return bool(self._redis.expire(self._k(key), max(1, int(ttl))))

    def incr(self, key: str, ttl: int) -> int:
        pipe = self._redis.pipeline()
        pipe.incr(self._k(key))
        pipe.expire(self._k(key), max(1, int(ttl)), nx=True)
        count, _ = pipe.execute()
        return int(count)

    def delete(self, key: str) -> None:
        self._redis.delete(self._k(key))

    def close(self) -> None:
        self._redis.close()

    def ping(self) -> None:
        self._redis.ping()

    def flush_prefix(self) -> None:
        """Delete every key of this store (tests)."""
        for key in self._redis.scan_iter(self._prefix + "*"):
            self._redis.delete(key)
