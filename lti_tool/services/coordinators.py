"""The coordinator role: a tool-side grant on (issuer, sub), never taken from the LMS."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_tool.models import CoordinatorGrant, Organization

from .launches import grants_index, slugify


class GrantError(ValueError):
    pass


def add_coordinator(
    session: Session, issuer: str, sub: str, organization: str | None = None, note: str = ""
) -> CoordinatorGrant:
    """Grant program-wide (no organization) or for one organization slug. Commits."""
    if not issuer or not sub:
        raise GrantError("--issuer and --sub are required")
    scope = "*"
    if organization:
        scope = slugify(organization)
        if session.scalars(select(Organization).where(Organization.slug == scope)).first() is None:
            raise GrantError(
                f"no organization {scope!r}; see `lti-tool platform list` or create it with "
                "`lti-tool platform set-org`"
            )
    grant = session.scalars(
        select(CoordinatorGrant).where(
            CoordinatorGrant.issuer == issuer,
            CoordinatorGrant.sub == sub,
            CoordinatorGrant.scope == scope,
        )
    ).first()
    if grant is None:
        grant = CoordinatorGrant(issuer=issuer, sub=sub, scope=scope, note=note)
        session.add(grant)
    session.commit()
    grants_index.invalidate()
    return grant


def list_coordinators(session: Session) -> list[CoordinatorGrant]:
    return list(
        session.scalars(
            select(CoordinatorGrant).order_by(CoordinatorGrant.issuer, CoordinatorGrant.sub)
        )
    )


def remove_coordinator(
    session: Session, issuer: str, sub: str, organization: str | None = None
) -> int:
    """Remove grants (all of the person's, or one organization's). Commits; returns count."""
    query = select(CoordinatorGrant).where(
        CoordinatorGrant.issuer == issuer, CoordinatorGrant.sub == sub
    )
    if organization:
        query = query.where(CoordinatorGrant.scope == slugify(organization))
    rows = list(session.scalars(query))
    for row in rows:
        session.delete(row)
    session.commit()
    grants_index.invalidate()
    return len(rows)
