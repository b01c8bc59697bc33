"""RSA keys and raw JWS signing for the platform harness.

Contract:

* ``cached_rsa_private_key_pem(name)`` returns a 2048-bit RSA private key as PKCS#8 PEM. The key
  is generated once per process per ``name`` (key generation costs ~50-200 ms, and tests create
  many platforms), so two calls with the same name return the same key.
* ``public_key_pem(private_pem)`` returns the matching SubjectPublicKeyInfo PEM.
* ``sign_rs256(private_pem, payload, header)`` returns a compact JWS whose header is exactly
  ``header`` (no field is added or removed) and whose signature is always RS256 with the given
  key. Tests use it to spoil one header field (``alg``, ``kid``, ``typ``) while keeping a valid
  RS256 signature, which PyJWT's ``encode`` cannot do (it rewrites ``alg``).
"""

from __future__ import annotations

import base64
import functools
import json
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

RSA_KEY_BITS = 2048


@functools.cache
def cached_rsa_private_key_pem(name: str) -> str:
    """Return the process-wide RSA private key (PKCS#8 PEM) registered under ``name``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)
    return key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    ).decode("ascii")


@functools.lru_cache(maxsize=64)
def _load_rsa_private_key(private_pem: str) -> rsa.RSAPrivateKey:
    """Parse a PEM RSA key once: parsing validates the key and costs ~25 ms each time."""
    key = serialization.load_pem_private_key(private_pem.encode("ascii"), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TypeError("an RSA private key is required")
    return key


def public_key_pem(private_pem: str) -> str:
    """Return the public key (SubjectPublicKeyInfo PEM) of a PEM private key."""
    key = _load_rsa_private_key(private_pem)
    return (
        key.public_key()
        .public_bytes(
            encoding=serialization.Encoding.PEM,
            format=serialization.PublicFormat.SubjectPublicKeyInfo,
        )
        .decode("ascii")
    )


def b64url(data: bytes) -> str:
    """Base64url without padding, as JWS requires."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json_segment(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode("utf-8"))


def sign_rs256(private_pem: str, payload: dict[str, Any], header: dict[str, Any]) -> str:
    """Return ``b64(header).b64(payload).b64(RS256 signature)`` with ``header`` kept verbatim."""
    key = _load_rsa_private_key(private_pem)
    signing_input = f"{_json_segment(header)}.{_json_segment(payload)}"
    signature = key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url(signature)}"


def decode_segments(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the (header, payload) of a compact JWS without verifying it.

    Only for tokens the harness itself just produced (to re-sign them with a change).
    """
    header_b64, payload_b64, _signature = token.split(".")

    def _load(segment: str) -> dict[str, Any]:
        padded = segment + "=" * (-len(segment) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded))
        if not isinstance(value, dict):
            raise ValueError("JWS segment is not a JSON object")
        return value

    return _load(header_b64), _load(payload_b64)


def resign_rs256(
    private_pem: str,
    token: str,
    *,
    claim_updates: dict[str, Any],
    remove: list[str],
    header_overrides: dict[str, Any],
) -> str:
    """Re-sign ``token`` after setting/removing top-level claims and header fields.

    A ``None`` value in ``header_overrides`` deletes that header field.
    """
    header, claims = decode_segments(token)
    claims.update(claim_updates)
    for name in remove:
        claims.pop(name, None)
    header.update(header_overrides)
    header = {name: value for name, value in header.items() if value is not None}
    return sign_rs256(private_pem, claims, header)
