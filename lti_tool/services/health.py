"""Readiness: can this process reach what it needs?"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_tool.models import KEY_CURRENT, ToolKey
from lti_tool.store import KeyValueStore


def readiness(session: Session, store: KeyValueStore, kek: str) -> dict[str, str]:
    """Each check's result: ``ok`` or a short reason (no secrets, no stack traces)."""
    checks: dict[str, str] = {}
    try:
        key = session.scalars(select(ToolKey).where(ToolKey.status == KEY_CURRENT)).first()
        checks["database"] = "ok"
        if key is None:
            checks["tool_key"] = "missing: run `lti-tool setup`"
        else:
            try:
                Fernet(kek.encode()).decrypt(key.private_pem_encrypted.encode())
                checks["tool_key"] = "ok"
            except InvalidToken:
                checks["tool_key"] = "KEY_ENCRYPTION_KEY does not decrypt the tool key"
    except Exception as exc:  # any driver error means not ready
        # An aborted transaction must not poison what runs after (PostgreSQL).
        session.rollback()
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        store.ping()
        checks["store"] = "ok"
    except Exception as exc:  # Redis or database unreachable
        checks["store"] = f"error: {type(exc).__name__}"
    return checks
