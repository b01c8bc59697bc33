"""Published content versions: immutable rows, the full canonical source in each."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UTCDateTime, utcnow


class ContentVersion(Base):
    """One published version of a module, experiment or badge. Never updated."""

    __tablename__ = "content_versions"
    __table_args__ = (UniqueConstraint("item_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[str] = mapped_column(String(120), index=True)
    #: ``module``, ``experiment`` or ``badge``.
    kind: Mapped[str] = mapped_column(String(16))
    version: Mapped[str] = mapped_column(String(32))
    major: Mapped[int] = mapped_column(Integer)
    minor: Mapped[int] = mapped_column(Integer)
    patch: Mapped[int] = mapped_column(Integer)
    #: SHA-256 of the canonical source (see lti_tool.content.lock).
    sha256: Mapped[str] = mapped_column(String(64))
    #: Canonical JSON of every file of the item (media by hash).
    source: Mapped[str] = mapped_column(Text)
    #: Git commit the version was published from.
    git_commit: Mapped[str] = mapped_column(String(64))
    #: The changelog entry of this version, JSON {lang: text}.
    changelog: Mapped[str] = mapped_column(Text, default="{}")
    published_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
