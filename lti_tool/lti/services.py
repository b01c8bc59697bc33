"""OAuth2 service tokens for AGS and NRPS (client credentials with a JWT assertion),
cached per (issuer, client_id, scopes) in the shared store so every worker reuses them."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

import requests
from pylti1p3.exception import LtiServiceException
from pylti1p3.service_connector import ServiceConnector
from sqlalchemy.orm import Session

from lti_tool.models import Registration
from lti_tool.store import KeyValueStore

from .errors import LtiError, PlatformUnreachable
from .http import USER_AGENT, check_platform_url
from .toolconf import DbRegistration

#: Tokens are dropped this many seconds before the platform says they expire.
EXPIRY_MARGIN = 60
REGISTRATION_KEY_SECONDS = 60.0


def service_token_key(issuer: str, client_id: str, scopes: Iterable[str]) -> str:
    """The shared-store key of the access token for (issuer, client_id, scopes)."""
    raw = "\n".join([issuer, client_id, *sorted(scopes)])
    return "svc-token:" + hashlib.sha256(raw.encode()).hexdigest()


class TimeoutSession(requests.Session):
    """A requests session whose calls always have a timeout (pylti1p3 sets none)."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout
        self.headers["User-Agent"] = USER_AGENT

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", self._timeout)
        kwargs.setdefault("allow_redirects", False)
        return super().request(method, url, *args, **kwargs)


class StoreServiceConnector(ServiceConnector):
    """pylti1p3's connector with its token cache in the shared store."""

    def __init__(
        self, registration: DbRegistration, session: requests.Session, store: KeyValueStore
    ) -> None:
        super().__init__(registration, session)
        self._store = store
        self._registration_row = registration.row

    def _scope_key(self, scopes: Any) -> str:
        row = self._registration_row
        return service_token_key(row.issuer, row.client_id, scopes)

    def _get_cached_access_token(self, scope_key: str) -> str | None:
        return self._store.get(scope_key)

    def _cache_access_token(self, scope_key: str, access_token: str, expires_in: float) -> None:
        ttl = int(expires_in) - EXPIRY_MARGIN
        if ttl > 0:
            self._store.put(scope_key, access_token, ttl)


def service_token(
    session: Session,
    kek: str,
    store: KeyValueStore,
    http_timeout: float,
    registration_pk: int,
    scopes: Sequence[str],
) -> str:
    """An access token for ``scopes`` from the registration's token endpoint.

    Raises :class:`PlatformUnreachable` when the platform refuses or fails.
    """
    # (issuer, client_id) of the registration, remembered a minute: the delivery threads
    # skip a SELECT per score. Short, so a pk reused after a removal cannot pick up the
    # old platform's token for long.
    known = _REGISTRATION_KEYS.get(registration_pk)
    if known is not None and time.monotonic() - known[2] < REGISTRATION_KEY_SECONDS:
        cached = store.get(service_token_key(known[0], known[1], set(scopes)))
        if cached is not None:
            return cached
    row = session.get(Registration, registration_pk)
    if row is None:
        raise LtiError("unknown_registration", "registration removed")
    _REGISTRATION_KEYS[registration_pk] = (row.issuer, row.client_id, time.monotonic())
    key = service_token_key(row.issuer, row.client_id, set(scopes))
    cached = store.get(key)
    if cached is not None:
        return cached
    # One fetch per (registration, scopes) at a time in this process: the delivery threads
    # that find the cache empty together wait for the first one's token.
    with _fetch_lock(key):
        cached = store.get(key)
        if cached is not None:
            return cached
        check_platform_url(row.auth_token_url, "auth_token_url")
        with TimeoutSession(http_timeout) as http:
            connector = StoreServiceConnector(DbRegistration(row, session, kek), http, store)
            try:
                return str(connector.get_access_token(list(scopes)))
            except (LtiServiceException, requests.RequestException, KeyError, ValueError) as exc:
                raise PlatformUnreachable(
                    "service_token_refused", f"{row.auth_token_url}: {exc}"
                ) from exc


_REGISTRATION_KEYS: dict[int, tuple[str, str, float]] = {}
_FETCH_LOCKS: dict[str, threading.Lock] = {}
_FETCH_LOCKS_GUARD = threading.Lock()


def _fetch_lock(key: str) -> threading.Lock:
    with _FETCH_LOCKS_GUARD:
        return _FETCH_LOCKS.setdefault(key, threading.Lock())
