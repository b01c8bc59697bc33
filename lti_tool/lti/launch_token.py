"""The signed launch token that replaces third-party cookies after the launch.

The token is an HMAC-signed, timestamped launch id (itsdangerous, keyed by SECRET_KEY).
The launch itself lives in the shared store under that id. Expiry slides: each response
carries a fresh token and pushes the store entry's expiry. It travels in a form field or
the ``X-Launch-Token`` header, never in a URL, and doubles as the CSRF token of in-frame
forms (an attacker's page cannot read it).
"""

from __future__ import annotations

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from lti_tool.domain.launch import LaunchContext
from lti_tool.store import KeyValueStore

from .errors import LtiError

LAUNCH_PREFIX = "launch:"
FORM_FIELD = "launch_token"
HEADER = "X-Launch-Token"


class LaunchTokens:
    def __init__(self, secret_key: str, store: KeyValueStore, ttl: int) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt="dataide-launch-token")
        self._store = store
        self.ttl = ttl

    def start(self, launch: LaunchContext) -> str:
        """Store the launch and return its first token."""
        self._store.put(LAUNCH_PREFIX + launch.launch_id, launch.to_json(), self.ttl)
        return self.token_for(launch.launch_id)

    def token_for(self, launch_id: str) -> str:
        return str(self._serializer.dumps(launch_id))

    def resume(self, token: str | None) -> LaunchContext:
        """The launch a token stands for; its expiry is pushed back.

        Raises :class:`LtiError` ``launch_token_missing`` / ``launch_token_invalid`` /
        ``launch_token_expired`` (401).
        """
        if not token:
            raise LtiError("launch_token_missing", "no launch token", status=401)
        try:
            launch_id = self._serializer.loads(token, max_age=self.ttl)
        except SignatureExpired as exc:
            raise LtiError("launch_token_expired", "launch token expired", status=401) from exc
        except BadSignature as exc:
            raise LtiError("launch_token_invalid", "bad launch token", status=401) from exc
        raw = self._store.get(LAUNCH_PREFIX + str(launch_id))
        if raw is None:
            raise LtiError("launch_token_expired", "launch data expired", status=401)
        self._store.touch(LAUNCH_PREFIX + str(launch_id), self.ttl)
        return LaunchContext.from_json(raw)

    def update(self, launch: LaunchContext) -> None:
        """Save a changed launch (e.g. a new locale) under the same id."""
        self._store.put(LAUNCH_PREFIX + launch.launch_id, launch.to_json(), self.ttl)
