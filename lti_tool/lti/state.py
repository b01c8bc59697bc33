"""Login states: what the tool remembers between login initiation and launch.

A state record is written at login and taken (atomically, once) at launch. It binds the
nonce, the registration and, for the platform-storage flow, a secret the browser must
read back from the platform's storage. Taking it is what makes a replayed
(state, id_token) fail on every process and host.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field

from lti_tool.store import KeyValueStore

STATE_PREFIX = "lti-state:"
#: What a state record becomes once a launch used it (kept until it expires, so a replay
#: gets a clear "already used" instead of "unknown").
USED = "used"


@dataclass(frozen=True)
class LoginState:
    state: str
    nonce: str
    issuer: str
    client_id: str
    #: Login parameters kept to restart the login in a new window (cookie fallback).
    login_params: dict[str, str] = field(default_factory=dict)
    #: ``lti_storage_target`` when the platform offered its postMessage storage.
    storage_target: str | None = None
    #: Secret written to the platform storage; None when the flow is cookie-only.
    storage_secret: str | None = None
    #: Origin of the platform's OIDC endpoint: the only one postMessage talks to.
    platform_origin: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str) -> LoginState:
        return cls(**json.loads(raw))


def new_state_value() -> str:
    return "state-" + secrets.token_urlsafe(24)


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


class LoginStateStore:
    def __init__(self, store: KeyValueStore, ttl: int) -> None:
        self._store = store
        self._ttl = ttl

    def save(self, state: LoginState) -> None:
        self._store.put(STATE_PREFIX + state.state, state.to_json(), self._ttl)

    def peek(self, state: str) -> LoginState | str | None:
        """The record, :data:`USED` when a launch already consumed it, or None."""
        raw = self._store.get(STATE_PREFIX + state)
        if raw is None or raw == USED:
            return raw
        return LoginState.from_json(raw)

    def consume(self, state: str) -> bool:
        """Mark the state used; True for exactly one caller."""
        return self._store.consume(STATE_PREFIX + state, USED)
