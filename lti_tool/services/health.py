"""Readiness: can this process reach what it needs?"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_tool.models import ToolKey
from lti_tool.store import KeyValueStore


def readiness(session: Session, store: KeyValueStore) -> dict[str, str]:
    """Each check's result: ``ok`` or a short reason (no secrets, no stack traces)."""
    checks: dict[str, str] = {}
    try:
        has_key = session.scalars(select(ToolKey.id).limit(1)).first() is not None
        checks["database"] = "ok"
        checks["tool_key"] = "ok" if has_key else "missing: run `lti-tool setup`"
    except Exception as exc:  # any driver error means not ready
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        store.ping()
        checks["store"] = "ok"
    except Exception as exc:  # Redis or database unreachable
        checks["store"] = f"error: {type(exc).__name__}"
    return checks
