"""Tool keys: encrypted at rest, rotated with the previous key still published."""

from __future__ import annotations

import jwt
import pytest
from cryptography.fernet import Fernet
from flask import Flask

from lti_tool.db import get_db
from lti_tool.lti.keys import (
    KeyDecryptionError,
    published_jwks,
    rotate_keys,
    signing_key,
)
from lti_tool.models import ToolKey


def test_private_key_is_encrypted_at_rest(app: Flask) -> None:
    with get_db(app).session() as session:
        row = session.query(ToolKey).one()
        assert "PRIVATE KEY" not in row.private_pem_encrypted
        key = signing_key(session, app.extensions["dataide_settings"].key_encryption_key)
        assert key.private_pem.startswith("-----BEGIN PRIVATE KEY-----")


def test_wrong_encryption_key_is_a_clear_error(app: Flask) -> None:
    with get_db(app).session() as session, pytest.raises(KeyDecryptionError, match="share"):
        signing_key(session, Fernet.generate_key().decode())


def test_rotation_publishes_current_and_previous(app: Flask) -> None:
    kek = app.extensions["dataide_settings"].key_encryption_key
    with get_db(app).session() as session:
        first = signing_key(session, kek)
        rotate_keys(session, kek)
        second = signing_key(session, kek)
        assert {k["kid"] for k in published_jwks(session)["keys"]} == {first.kid, second.kid}
        assert published_jwks(session)["keys"][0]["kid"] == second.kid
        rotate_keys(session, kek)
        third = signing_key(session, kek)
        kids = {k["kid"] for k in published_jwks(session)["keys"]}
        assert kids == {second.kid, third.kid}


def test_jwks_endpoint_verifies_tool_signatures(app: Flask) -> None:
    kek = app.extensions["dataide_settings"].key_encryption_key
    with get_db(app).session() as session:
        key = signing_key(session, kek)
    token = jwt.encode({"x": 1}, key.private_pem, algorithm="RS256", headers={"kid": key.kid})
    jwks = app.test_client().get("/lti/jwks").get_json()
    jwk = next(k for k in jwks["keys"] if k["kid"] == key.kid)
    assert jwk["alg"] == "RS256" and jwk["use"] == "sig" and "d" not in jwk
    assert jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=["RS256"]) == {"x": 1}
