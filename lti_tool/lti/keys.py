"""The tool's own RSA keys: stored in the database, private keys encrypted at rest.

The JWKS publishes the current key and the previous one, so a platform that cached the
old key keeps verifying while it picks up the new one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwcrypto.jwk import JWK
from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_tool.models import KEY_CURRENT, KEY_PREVIOUS, KEY_RETIRED, ToolKey

KEY_BITS = 2048


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_pem: str
    public_pem: str


class KeyDecryptionError(RuntimeError):
    """KEY_ENCRYPTION_KEY does not decrypt the stored private key."""


def _new_key(kek: str) -> ToolKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    kid = JWK.from_pem(public_pem).thumbprint()
    return ToolKey(
        kid=kid,
        public_pem=public_pem.decode(),
        private_pem_encrypted=Fernet(kek.encode()).encrypt(private_pem).decode(),
        status=KEY_CURRENT,
    )


def ensure_current_key(session: Session, kek: str) -> ToolKey:
    """Return the current key, creating the first one if there is none (caller commits)."""
    key = session.scalars(select(ToolKey).where(ToolKey.status == KEY_CURRENT)).first()
    if key is None:
        key = _new_key(kek)
        session.add(key)
        session.flush()
    return key


def rotate_keys(session: Session, kek: str) -> ToolKey:
    """Make a new current key; current becomes previous, previous is retired."""
    now = datetime.now(UTC)
    for old in session.scalars(select(ToolKey).where(ToolKey.status == KEY_PREVIOUS)):
        old.status = KEY_RETIRED
        old.retired_at = now
    for cur in session.scalars(select(ToolKey).where(ToolKey.status == KEY_CURRENT)):
        cur.status = KEY_PREVIOUS
    session.flush()
    key = _new_key(kek)
    session.add(key)
    session.flush()
    return key


def signing_key(session: Session, kek: str) -> SigningKey:
    """The current key with its private PEM decrypted. Creates one if needed."""
    key = ensure_current_key(session, kek)
    try:
        private = Fernet(kek.encode()).decrypt(key.private_pem_encrypted.encode()).decode()
    except InvalidToken as exc:
        raise KeyDecryptionError(
            "KEY_ENCRYPTION_KEY cannot decrypt the tool's private key: every worker and host "
            "must share the key the database was set up with."
        ) from exc
    return SigningKey(kid=key.kid, private_pem=private, public_pem=key.public_pem)


def public_jwk(key: ToolKey) -> dict[str, Any]:
    jwk = json.loads(JWK.from_pem(key.public_pem.encode()).export_public())
    jwk.update({"kid": key.kid, "alg": "RS256", "use": "sig"})
    return dict(jwk)


def published_jwks(session: Session) -> dict[str, list[dict[str, Any]]]:
    """JWKS document: the current key first, then the previous one."""
    rows = session.scalars(
        select(ToolKey)
        .where(ToolKey.status.in_((KEY_CURRENT, KEY_PREVIOUS)))
        .order_by(ToolKey.status, ToolKey.id.desc())
    ).all()
    return {"keys": [public_jwk(k) for k in rows]}
