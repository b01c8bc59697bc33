"""Access and deletion requests (Quebec's Law 25): export and erase a person's data."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from lti_tool.models import Attempt, CoordinatorGrant, GradeOutboxRow, User


class UserNotFound(LookupError):
    pass


def _user(session: Session, issuer: str, sub: str) -> User:
    user = session.scalars(select(User).where(User.issuer == issuer, User.sub == sub)).first()
    if user is None:
        raise UserNotFound(f"no user with issuer {issuer!r} and sub {sub!r}")
    return user


def find_users(session: Session, text: str, limit: int = 50) -> list[User]:
    """People whose name or email contains ``text`` (case-insensitive), newest first."""
    needle = f"%{text.strip().lower()}%"
    if len(needle) < 4:
        return []
    return list(
        session.scalars(
            select(User)
            .where(
                func.lower(func.coalesce(User.email, "")).like(needle)
                | func.lower(func.coalesce(User.name, "")).like(needle)
                | func.lower(
                    func.coalesce(User.given_name, "") + " " + func.coalesce(User.family_name, "")
                ).like(needle)
            )
            .order_by(User.last_launch_at.desc())
            .limit(limit)
        )
    )


def export_user(session: Session, issuer: str, sub: str) -> dict[str, Any]:
    """Everything the tool holds about one person, as JSON-ready data."""
    user = _user(session, issuer, sub)
    grants = session.scalars(
        select(CoordinatorGrant).where(
            CoordinatorGrant.issuer == issuer, CoordinatorGrant.sub == sub
        )
    ).all()
    return {
        "user": {
            "issuer": user.issuer,
            "sub": user.sub,
            "name": user.name,
            "given_name": user.given_name,
            "family_name": user.family_name,
            "email": user.email,
            "locale": user.locale,
            "created_at": user.created_at.isoformat(),
            "last_launch_at": user.last_launch_at.isoformat(),
        },
        "coordinator_grants": [{"scope": g.scope, "note": g.note} for g in grants],
        "attempts": [
            {
                "item": a.item_id,
                "version": a.version,
                "sections_seen": json.loads(a.sections_seen or "[]"),
                "answers": json.loads(a.answers or "{}"),
                "started_at": a.created_at.isoformat(),
                "completed_at": a.completed_at.isoformat() if a.completed_at else None,
            }
            for a in session.scalars(select(Attempt).where(Attempt.user_pk == user.id))
        ],
        "grades_sent": [
            {
                "resource_id": r.resource_id,
                "score_given": r.score_given,
                "score_maximum": r.score_maximum,
                "timestamp": r.timestamp,
                "state": r.state,
            }
            for r in session.scalars(
                select(GradeOutboxRow).where(GradeOutboxRow.user_pk == user.id)
            )
        ],
    }


def erase_user(session: Session, issuer: str, sub: str) -> None:
    """Delete the person's row, grants, attempts and grade rows. Commits.

    Grades already in the LMS gradebook are the LMS's: erase them there.
    """
    user = _user(session, issuer, sub)
    session.execute(
        delete(CoordinatorGrant).where(
            CoordinatorGrant.issuer == issuer, CoordinatorGrant.sub == sub
        )
    )
    session.execute(delete(GradeOutboxRow).where(GradeOutboxRow.user_pk == user.id))
    session.execute(delete(Attempt).where(Attempt.user_pk == user.id))
    session.delete(user)
    session.commit()
