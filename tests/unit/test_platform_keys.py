"""The platform key cache: refetch on an unknown kid, never a blind hammering."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from lti_tool.lti.errors import LtiError
from lti_tool.lti.platform_keys import PlatformKeyCache


def jwk(kid: str) -> dict[str, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    data: dict[str, Any] = RSAAlgorithm.to_jwk(key, as_dict=True)
    return {**data, "kid": kid, "alg": "RS256", "use": "sig"}


class FakeHttp:
    """The edge of a unit test: a JWKS URL whose answer the test controls."""

    def __init__(self) -> None:
        self.keys = [jwk("k1")]
        self.calls = 0

    def get_json(self, url: str, what: str) -> Any:
        self.calls += 1
        return {"keys": list(self.keys)}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_rotation_is_picked_up_immediately() -> None:
    http, clock = FakeHttp(), Clock()
    cache = PlatformKeyCache(http, clock=clock)  # type: ignore[arg-type]
    cache.key_for("u", "k1")
    http.keys.append(jwk("k2"))
    cache.key_for("u", "k2")
    assert http.calls == 2
    cache.key_for("u", "k1")
    cache.key_for("u", "k2")
    assert http.calls == 2


def test_same_unknown_kid_is_not_refetched_within_ten_seconds() -> None:
    http, clock = FakeHttp(), Clock()
    cache = PlatformKeyCache(http, clock=clock)  # type: ignore[arg-type]
    for _ in range(5):
        with pytest.raises(LtiError, match="unknown_kid"):
            cache.key_for("u", "forged")
    assert http.calls == 1
    clock.now += 11
    with pytest.raises(LtiError):
        cache.key_for("u", "forged")
    assert http.calls == 2


def test_refetches_are_capped_per_minute() -> None:
    http, clock = FakeHttp(), Clock()
    cache = PlatformKeyCache(http, clock=clock)  # type: ignore[arg-type]
    cache.key_for("u", "k1")
    for i in range(30):
        with pytest.raises(LtiError):
            cache.key_for("u", f"random-{i}")
    assert http.calls == 11  # first fetch + 10 refetches
    clock.now += 61
    with pytest.raises(LtiError):
        cache.key_for("u", "random-next")
    assert http.calls == 12


def test_malformed_and_foreign_keys_are_skipped() -> None:
    http, clock = FakeHttp(), Clock()
    http.keys = [{"kid": "bad", "kty": "RSA", "n": "!!"}, {**jwk("enc"), "use": "enc"}, jwk("k1")]
    cache = PlatformKeyCache(http, clock=clock)  # type: ignore[arg-type]
    assert cache.key_for("u", "k1") is not None
    with pytest.raises(LtiError):
        cache.key_for("u", "enc")


def test_old_key_sets_are_refreshed() -> None:
    http, clock = FakeHttp(), Clock()
    cache = PlatformKeyCache(http, clock=clock)  # type: ignore[arg-type]
    cache.key_for("u", "k1")
    clock.now += 86401
    cache.key_for("u", "k1")
    assert http.calls == 2
