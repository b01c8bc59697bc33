"""Access and deletion requests (Quebec's Law 25): export and erase a person's data."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from lti_tool.models import CoordinatorGrant, User


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
    }


def erase_user(session: Session, issuer: str, sub: str) -> None:
    """Delete the person's row and grants. Commits."""
    user = _user(session, issuer, sub)
    session.execute(
        delete(CoordinatorGrant).where(
            CoordinatorGrant.issuer == issuer, CoordinatorGrant.sub == sub
        )
    )
    session.delete(user)
    session.commit()
