"""Short-lived key/value entries (login states, launch data, rate limits) when no Redis."""

from __future__ import annotations

from sqlalchemy import Float, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base


class KeyValueEntry(Base):
    """One entry of the database-backed store; ``expires_at`` is a Unix time in seconds."""

    __tablename__ = "kv_entries"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[float] = mapped_column(Float, index=True)
