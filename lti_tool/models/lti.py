"""Tool configuration rows: the tool's keys, platform registrations and deployments."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, CreatedAt, UTCDateTime

KEY_CURRENT = "current"
KEY_PREVIOUS = "previous"
KEY_RETIRED = "retired"

DEPLOYMENT_ACTIVE = "active"
DEPLOYMENT_PENDING = "pending"


class ToolKey(CreatedAt, Base):
    """An RSA key pair of the tool. The private key is Fernet-encrypted at rest."""

    __tablename__ = "tool_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    public_pem: Mapped[str] = mapped_column(Text)
    #: Private key PEM encrypted with KEY_ENCRYPTION_KEY (Fernet token).
    private_pem_encrypted: Mapped[str] = mapped_column(Text)
    #: ``current`` signs; ``previous`` is still published in the JWKS; ``retired`` is not.
    status: Mapped[str] = mapped_column(String(16), index=True)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Organization(CreatedAt, Base):
    """A community organization; program reports and team work count these."""

    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    name: Mapped[str] = mapped_column(String(255))


class Registration(CreatedAt, Base):
    """A platform's registration of the tool, keyed by (issuer, client_id)."""

    __tablename__ = "registrations"
    __table_args__ = (UniqueConstraint("issuer", "client_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issuer: Mapped[str] = mapped_column(String(255), index=True)
    client_id: Mapped[str] = mapped_column(String(255))
    #: Human name shown to administrators (platform name from registration or CLI).
    name: Mapped[str] = mapped_column(String(255), default="")
    auth_login_url: Mapped[str] = mapped_column(String(1024))
    auth_token_url: Mapped[str] = mapped_column(String(1024))
    #: ``aud`` for service-token assertions when the platform wants one other than the URL.
    auth_audience: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    key_set_url: Mapped[str] = mapped_column(String(1024))
    #: Origins allowed to frame the tool (CSP frame-ancestors) for this registration.
    frame_origins: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: Deployments first seen in a valid launch become active without an admin.
    auto_approve: Mapped[bool] = mapped_column(Boolean, default=False)
    #: ``dynamic`` (LTI Dynamic Registration) or ``manual`` (CLI).
    source: Mapped[str] = mapped_column(String(16), default="manual")
    #: Product family reported by the platform (``moodle``, ``openedx``...), informative.
    product_family: Mapped[str] = mapped_column(String(64), default="")

    deployments: Mapped[list[Deployment]] = relationship(
        back_populates="registration", cascade="all, delete-orphan"
    )


class Deployment(CreatedAt, Base):
    """A deployment of a registration; launches are accepted only from active ones."""

    __tablename__ = "deployments"
    __table_args__ = (UniqueConstraint("registration_id", "deployment_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    registration_id: Mapped[int] = mapped_column(
        ForeignKey("registrations.id", ondelete="CASCADE"), index=True
    )
    deployment_id: Mapped[str] = mapped_column(String(255))
    #: ``active`` or ``pending`` (first seen in a launch, waiting for an admin).
    status: Mapped[str] = mapped_column(String(16), default=DEPLOYMENT_ACTIVE)
    organization_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="SET NULL"), nullable=True, index=True
    )
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    registration: Mapped[Registration] = relationship(back_populates="deployments")
    organization: Mapped[Organization | None] = relationship()


class RegistrationInvitation(CreatedAt, Base):
    """A one-time Dynamic Registration URL made by ``lti-tool platform invite``."""

    __tablename__ = "registration_invitations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: SHA-256 of the secret in the URL; the secret itself is never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    note: Mapped[str] = mapped_column(String(255), default="")
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
