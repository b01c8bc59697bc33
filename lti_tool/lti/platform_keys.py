"""Platform public keys, fetched from each registration's JWKS URL and kept parsed.

Keys stay cached until a token names a ``kid`` the cache does not know: then the JWKS
is fetched again at once (platform key rotation). The same unknown kid is looked up at
most once per 10 seconds, and a URL is refetched at most 10 times a minute, so forged
kids cannot make the tool hammer a platform. A key set older than a day is refreshed so
revoked keys drop out.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from jwt import PyJWK
from jwt.exceptions import InvalidKeyError, PyJWKError

from .errors import LtiError
from .http import PlatformHttp

MAX_AGE_SECONDS = 86400.0
UNKNOWN_KID_INTERVAL = 10.0
REFETCHES_PER_MINUTE = 10


@dataclass
class _Entry:
    keys: dict[str, PyJWK]
    fetched_at: float
    unknown_kids: dict[str, float] = field(default_factory=dict)
    refetches: list[float] = field(default_factory=list)


class PlatformKeyCache:
    """Thread-safe per-process cache: key set URL -> {kid: parsed key}."""

    def __init__(self, http: PlatformHttp, clock: Any = time.monotonic) -> None:
        self._http = http
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self.fetches = 0

    def key_for(self, key_set_url: str, kid: str) -> PyJWK:
        """The parsed key ``kid`` of the set at ``key_set_url``.

        Raises :class:`LtiError` ``unknown_kid`` when the platform does not publish it,
        or ``PlatformUnreachable`` when the set cannot be fetched.
        """
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key_set_url)
        if entry and now - entry.fetched_at < MAX_AGE_SECONDS and kid in entry.keys:
            return entry.keys[kid]
        if entry is not None and kid not in entry.keys:
            recent = entry.unknown_kids.get(kid)
            recent_fetches = [t for t in entry.refetches if now - t < 60.0]
            if (recent is not None and now - recent < UNKNOWN_KID_INTERVAL) or len(
                recent_fetches
            ) >= REFETCHES_PER_MINUTE:
                raise LtiError("unknown_kid", f"kid {kid!r} is not in {key_set_url}")
        entry = self._fetch(key_set_url, now, entry)
        if kid not in entry.keys:
            entry.unknown_kids[kid] = now
            raise LtiError("unknown_kid", f"kid {kid!r} is not in {key_set_url}")
        return entry.keys[kid]

    def _fetch(self, url: str, now: float, old: _Entry | None) -> _Entry:
        document = self._http.get_json(url, "platform JWKS")
        self.fetches += 1
        raw_keys = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(raw_keys, list):
            raise LtiError("bad_jwks", f"{url} has no 'keys' list", status=502)
        keys: dict[str, PyJWK] = {}
        for raw in raw_keys:
            if not isinstance(raw, dict) or not raw.get("kid"):
                continue
            if raw.get("use", "sig") != "sig" or raw.get("kty") != "RSA":
                continue
            try:
                keys[str(raw["kid"])] = PyJWK(raw, algorithm="RS256")
            except (PyJWKError, InvalidKeyError, ValueError, TypeError):
                continue  # a malformed key must not hide the good ones
        entry = _Entry(keys=keys, fetched_at=now)
        if old is not None:
            entry.unknown_kids = {
                k: t for k, t in old.unknown_kids.items() if now - t < UNKNOWN_KID_INTERVAL
            }
            entry.refetches = [t for t in old.refetches if now - t < 60.0] + [now]
        with self._lock:
            self._entries[url] = entry
        return entry

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
