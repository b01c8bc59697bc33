"""People and places seen through launches. Identity is per issuer, not per registration."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, CreatedAt, UTCDateTime, utcnow


class User(CreatedAt, Base):
    """A person keyed by (issuer, sub). The only row holding personal information."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("issuer", "sub"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issuer: Mapped[str] = mapped_column(String(255))
    sub: Mapped[str] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    given_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    family_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    #: Language the person chose with the switch (``fr-CA`` or ``en``); None = follow launch.
    locale: Mapped[str | None] = mapped_column(String(8), nullable=True)
    last_launch_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Context(CreatedAt, Base):
    """A course (LTI context) keyed by (issuer, context id)."""

    __tablename__ = "contexts"
    __table_args__ = (UniqueConstraint("issuer", "context_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issuer: Mapped[str] = mapped_column(String(255))
    context_id: Mapped[str] = mapped_column(String(255))
    label: Mapped[str] = mapped_column(String(255), default="")
    title: Mapped[str] = mapped_column(String(512), default="")
    deployment_id: Mapped[int | None] = mapped_column(
        ForeignKey("deployments.id", ondelete="SET NULL"), nullable=True, index=True
    )


class ResourceLink(CreatedAt, Base):
    """A placement of the tool in a course, keyed by (issuer, resource link id)."""

    __tablename__ = "resource_links"
    __table_args__ = (UniqueConstraint("issuer", "resource_link_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issuer: Mapped[str] = mapped_column(String(255))
    resource_link_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(String(512), default="")
    context_pk: Mapped[int | None] = mapped_column(
        ForeignKey("contexts.id", ondelete="SET NULL"), nullable=True, index=True
    )
    deployment_id: Mapped[int | None] = mapped_column(
        ForeignKey("deployments.id", ondelete="SET NULL"), nullable=True, index=True
    )


class CoordinatorGrant(CreatedAt, Base):
    """The coordinator role, granted tool-side, never taken from the LMS.

    ``scope`` is ``*`` for program-wide or an organization slug.
    """

    __tablename__ = "coordinator_grants"
    __table_args__ = (UniqueConstraint("issuer", "sub", "scope"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issuer: Mapped[str] = mapped_column(String(255))
    sub: Mapped[str] = mapped_column(String(255))
    scope: Mapped[str] = mapped_column(String(120), default="*")
    note: Mapped[str] = mapped_column(String(255), default="")
