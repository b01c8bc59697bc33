"""The shared store's atomic operations, on the database and on Redis."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from lti_tool.models import Base
from lti_tool.store import KeyValueStore, RedisStore, SqlStore
from tests.conftest import postgres_url, redis_url, reset_postgres


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KeyValueStore]:
    if request.param == "redis":
        s = RedisStore(redis_url(), prefix=f"test-{tmp_path.name}:")
        yield s
        s.flush_prefix()
        return
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'kv.sqlite3'}"
    else:
        url = postgres_url()
        reset_postgres(url)
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    sql_store = SqlStore(engine)
    yield sql_store
    sql_store.close()
    engine.dispose()


def test_put_get_delete(store: KeyValueStore) -> None:
    assert store.get("a") is None
    store.put("a", "1", 60)
    assert store.get("a") == "1"
    store.put("a", "2", 60)
    assert store.get("a") == "2"
    store.delete("a")
    assert store.get("a") is None


def test_take_returns_value_once(store: KeyValueStore) -> None:
    store.put("state", "nonce", 60)
    assert store.take("state") == "nonce"
    assert store.take("state") is None
    assert store.get("state") is None


def test_take_is_atomic_across_threads(store: KeyValueStore) -> None:
    store.put("race", "v", 60)
    winners: list[str | None] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        winners.append(store.take("race"))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert winners.count("v") == 1
    assert winners.count(None) == 7


def test_add_only_when_absent(store: KeyValueStore) -> None:
    assert store.add("once", "x", 60) is True
    assert store.add("once", "y", 60) is False
    assert store.get("once") == "x"


def test_incr_counts(store: KeyValueStore) -> None:
    assert [store.incr("hits", 60) for _ in range(3)] == [1, 2, 3]


def test_touch_only_live_keys(store: KeyValueStore) -> None:
    assert store.touch("missing", 60) is False
    store.put("live", "1", 60)
    assert store.touch("live", 120) is True


def test_sql_store_expiry(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'kv.sqlite3'}")
    Base.metadata.create_all(engine)
    clock = FakeClock()
    store = SqlStore(engine, clock=clock)
    store.put("k", "v", 10)
    store.put("counter", "5", 10)
    clock.now += 11
    assert store.get("k") is None
    assert store.take("k") is None
    assert store.touch("k", 10) is False
    assert store.add("k", "new", 10) is True
    assert store.incr("counter", 10) == 1
    assert store.purge_expired() == 0
    clock.now += 11
    assert store.purge_expired() == 2


def test_consume_once(store: KeyValueStore) -> None:
    assert store.consume("missing", "used") is False
    store.put("s", "record", 60)
    assert store.consume("s", "used") is True
    assert store.consume("s", "used") is False
    assert store.get("s") == "used"


def test_consume_is_atomic_across_threads(store: KeyValueStore) -> None:
    store.put("race2", "record", 60)
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        results.append(store.consume("race2", "used"))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1


def test_incr_restarts_after_expiry(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'kv.sqlite3'}")
    Base.metadata.create_all(engine)
    clock = FakeClock()
    store = SqlStore(engine, clock=clock)
    assert [store.incr("c", 10) for _ in range(3)] == [1, 2, 3]
    clock.now += 11
    assert store.incr("c", 10) == 1
    assert store.incr("c", 10) == 2


def test_sql_store_gives_connections_back_when_threads_end(tmp_path: Path) -> None:
    # A server that starts a thread per request must not drain the pool.
    engine = create_engine(f"sqlite:///{tmp_path / 'threads.db'}")
    Base.metadata.create_all(engine)
    store = SqlStore(engine)
    for n in range(engine.pool.size() + engine.pool._max_overflow + 5):  # type: ignore[attr-defined]
        thread = threading.Thread(target=store.put, args=(f"k{n}", "v", 60))
        thread.start()
        thread.join()
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    assert store.get("k0") == "v"
    store.close()
    engine.dispose()
