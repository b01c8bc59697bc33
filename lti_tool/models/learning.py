"""Placements, learners' attempts, line items and the grade outbox."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, CreatedAt, UTCDateTime, utcnow


class Placement(CreatedAt, Base):
    """What a resource link serves: a catalog item and its version pin.

    Created by the first launch that carries the Deep Linking custom keys (a course copy
    brings the keys with a new resource link id, and so gets its own placement).
    """

    __tablename__ = "placements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resource_link_pk: Mapped[int] = mapped_column(
        ForeignKey("resource_links.id", ondelete="CASCADE"), unique=True
    )
    item_id: Mapped[str] = mapped_column(String(120), index=True)
    #: ``module`` or ``experiment``.
    kind: Mapped[str] = mapped_column(String(16))
    #: ``1`` (newest 1.x), an exact ``1.2.0`` or a PEP 440 range.
    pin: Mapped[str] = mapped_column(String(64))
    #: The ``dataide_dl`` uuid of the Deep Linking item this placement came from.
    dl_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class LineItem(CreatedAt, Base):
    """The gradebook column of a placement for one MAJOR (``resource_id`` = ``id@MAJOR``).

    The unique key makes two first grades share one column: the first to insert the row
    creates the column on the platform (``url`` empty until then).
    """

    __tablename__ = "line_items"
    __table_args__ = (UniqueConstraint("resource_link_pk", "resource_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resource_link_pk: Mapped[int] = mapped_column(
        ForeignKey("resource_links.id", ondelete="CASCADE")
    )
    resource_id: Mapped[str] = mapped_column(String(160))
    url: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    #: True when the platform gave it in the launch (declarative); False when created.
    from_launch: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Attempt(CreatedAt, Base):
    """A learner's work on a placement for one MAJOR, on the exact version it started."""

    __tablename__ = "attempts"
    __table_args__ = (UniqueConstraint("user_pk", "resource_link_pk", "major"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_pk: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    resource_link_pk: Mapped[int] = mapped_column(
        ForeignKey("resource_links.id", ondelete="CASCADE"), index=True
    )
    item_id: Mapped[str] = mapped_column(String(120))
    #: The exact version the attempt started on; it never changes.
    version: Mapped[str] = mapped_column(String(32))
    major: Mapped[int] = mapped_column(Integer)
    #: JSON list of section ids seen, in the order first seen.
    sections_seen: Mapped[str] = mapped_column(Text, default="[]")
    #: The section the learner was last on (where a relaunch resumes).
    current_section: Mapped[str | None] = mapped_column(String(120), nullable=True)
    #: JSON {question id: {"correct": bool, "tries": int}}.
    answers: Mapped[str] = mapped_column(Text, default="{}")
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


OUTBOX_PENDING = "pending"
OUTBOX_SENDING = "sending"
OUTBOX_DELIVERED = "delivered"
OUTBOX_SUPERSEDED = "superseded"
OUTBOX_NOT_GRADABLE = "not_gradable"
OUTBOX_FAILED = "failed"
OUTBOX_TERMINAL = (OUTBOX_DELIVERED, OUTBOX_SUPERSEDED, OUTBOX_NOT_GRADABLE, OUTBOX_FAILED)


class GradeOutboxRow(CreatedAt, Base):
    """A score to send to a platform, written in the transaction of what it grades.

    It holds everything the delivery worker needs: no launch is at hand when it is sent.
    """

    __tablename__ = "grade_outbox"
    __table_args__ = (
        Index("ix_grade_outbox_state_due", "state", "next_attempt_at"),
        # What workers scan: the pending rows, in due order (partial: stays small).
        Index(
            "ix_grade_outbox_pending_due",
            "next_attempt_at",
            "id",
            postgresql_where=text("state = 'pending'"),
            sqlite_where=text("state = 'pending'"),
        ),
        Index("ix_grade_outbox_key", "resource_link_pk", "resource_id", "user_sub"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    registration_pk: Mapped[int] = mapped_column(
        ForeignKey("registrations.id", ondelete="CASCADE"), index=True
    )
    resource_link_pk: Mapped[int] = mapped_column(
        ForeignKey("resource_links.id", ondelete="CASCADE")
    )
    attempt_pk: Mapped[int | None] = mapped_column(
        ForeignKey("attempts.id", ondelete="SET NULL"), nullable=True, index=True
    )
    user_pk: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True, index=True
    )
    #: The platform's ``userId`` (the launch ``sub``).
    user_sub: Mapped[str] = mapped_column(String(255))
    #: The line item to post to; empty when it must be found or created by the worker.
    line_item_url: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    lineitems_url: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    resource_link_id: Mapped[str] = mapped_column(String(255))
    resource_id: Mapped[str] = mapped_column(String(160))
    tag: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(255))
    score_given: Mapped[float | None] = mapped_column(Float, nullable=True)
    score_maximum: Mapped[float] = mapped_column(Float)
    activity_progress: Mapped[str] = mapped_column(String(32))
    grading_progress: Mapped[str] = mapped_column(String(32))
    #: ISO 8601 with offset: the grading time, identical on every retry.
    timestamp: Mapped[str] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(16), default=OUTBOX_PENDING)
    tries: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    claimed_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
