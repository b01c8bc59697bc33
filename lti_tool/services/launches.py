"""Recording a validated launch: the person, the course, the placement, the organization."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lti_tool.domain.launch import COORDINATOR, LaunchContext
from lti_tool.models import (
    Context,
    CoordinatorGrant,
    Deployment,
    Organization,
    ResourceLink,
    User,
    utcnow,
)

T = TypeVar("T")
LAST_LAUNCH_RESOLUTION = timedelta(minutes=15)
_SLUG = re.compile(r"[^a-z0-9]+")


def slugify(text: str) -> str:
    return _SLUG.sub("-", text.lower()).strip("-")[:120] or "org"


def _get_or_create(session: Session, find: Callable[[], T | None], make: Callable[[], T]) -> T:
    """Find a row or insert it; two processes racing end with the same row."""
    row = find()
    if row is not None:
        return row
    try:
        with session.begin_nested():
            row = make()
            session.add(row)
    except IntegrityError:
        row = find()
        assert row is not None
    return row


def _organization_for(session: Session, launch: LaunchContext) -> Organization | None:
    deployment = session.get(Deployment, launch.deployment_pk)
    if deployment is None:
        return None
    if deployment.organization_id is not None:
        return session.get(Organization, deployment.organization_id)
    # First launch of this deployment: a `dataide_org` custom parameter groups it with
    # others; by default each deployment is its own organization.
    # Slugs are scoped by the platform's host, so a course on one platform cannot attach
    # a deployment to another platform's organization.
    host = urlsplit(launch.issuer).hostname or launch.issuer
    requested = launch.custom.get("dataide_org", "").strip()
    if requested:
        slug, name = slugify(f"{host}-{requested}"), requested
    else:
        # One organization per deployment: (client id, deployment id) within the issuer.
        slug = slugify(f"{host}-{launch.client_id}-{launch.deployment_id}")
        name = f"{host} ({launch.client_id} / {launch.deployment_id})"
    org = _get_or_create(
        session,
        lambda: session.scalars(select(Organization).where(Organization.slug == slug)).first(),
        lambda: Organization(slug=slug, name=name[:255]),
    )
    deployment.organization_id = org.id
    return org


def record_launch(session: Session, launch: LaunchContext) -> LaunchContext:
    """Upsert the rows a launch names and return the launch with their ids and with the
    coordinator role when the person holds a grant. Commits."""
    user = _get_or_create(
        session,
        lambda: session.scalars(
            select(User).where(User.issuer == launch.issuer, User.sub == launch.sub)
        ).first(),
        lambda: User(issuer=launch.issuer, sub=launch.sub),
    )
    # Keep only what the platform sends now: minimum personal information (Law 25).
    # Unchanged values write nothing; the launch time is refreshed at most every
    # LAST_LAUNCH_RESOLUTION, so a returning person's launch usually updates no row.
    user.name = launch.name
    user.given_name = launch.given_name
    user.family_name = launch.family_name
    user.email = launch.email
    now = utcnow()
    if user.last_launch_at is None or now - user.last_launch_at > LAST_LAUNCH_RESOLUTION:
        user.last_launch_at = now

    context = None
    if launch.context_id:
        context = _get_or_create(
            session,
            lambda: session.scalars(
                select(Context).where(
                    Context.issuer == launch.issuer, Context.context_id == launch.context_id
                )
            ).first(),
            lambda: Context(
                issuer=launch.issuer,
                context_id=launch.context_id or "",
                deployment_id=launch.deployment_pk,
            ),
        )
        context.label = (launch.context_label or "")[:255]
        context.title = (launch.context_title or "")[:512]

    link = None
    if launch.resource_link_id:
        link = _get_or_create(
            session,
            lambda: session.scalars(
                select(ResourceLink).where(
                    ResourceLink.issuer == launch.issuer,
                    ResourceLink.resource_link_id == launch.resource_link_id,
                )
            ).first(),
            lambda: ResourceLink(
                issuer=launch.issuer,
                resource_link_id=launch.resource_link_id or "",
                context_pk=context.id if context else None,
                deployment_id=launch.deployment_pk,
            ),
        )
        link.title = (launch.resource_link_title or "")[:512]

    deployment = session.get(Deployment, launch.deployment_pk)
    org_pk = deployment.organization_id if deployment else None
    if deployment is not None and org_pk is None:
        org = _organization_for(session, launch)
        org_pk = org.id if org else None
    grant_scopes = set(
        session.scalars(
            select(CoordinatorGrant.scope).where(
                CoordinatorGrant.issuer == launch.issuer, CoordinatorGrant.sub == launch.sub
            )
        )
    )
    is_coordinator = "*" in grant_scopes
    if grant_scopes and not is_coordinator and org_pk is not None:
        org_row = session.get(Organization, org_pk)
        is_coordinator = org_row is not None and org_row.slug in grant_scopes
    session.flush()
    roles = launch.roles | {COORDINATOR} if is_coordinator else launch.roles
    result = launch.with_changes(
        user_pk=user.id,
        context_pk=context.id if context else None,
        resource_link_pk=link.id if link else None,
        organization_pk=org_pk,
        roles=frozenset(roles),
        locale=user.locale or launch.locale,
    )
    session.commit()
    return result


def set_user_locale(session: Session, user_pk: int, locale: str) -> None:
    """Remember a person's language switch. Commits."""
    user = session.get(User, user_pk)
    if user is not None:
        user.locale = locale
        session.commit()
