"""Recording a validated launch: the person, the course, the placement, the organization.

This runs on every launch, so it uses Core statements (no ORM unit of work) and writes
only what changed: a returning person in a known course usually costs three SELECTs.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, cast
from urllib.parse import urlsplit

from sqlalchemy import Table, bindparam, insert, select, update
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

LAST_LAUNCH_RESOLUTION = timedelta(minutes=15)
GRANTS_CACHE_SECONDS = 10.0
_SLUG = re.compile(r"[^a-z0-9]+")

_USERS = cast(Table, User.__table__)
_CONTEXTS = cast(Table, Context.__table__)
_LINKS = cast(Table, ResourceLink.__table__)


def slugify(text: str) -> str:
    return _SLUG.sub("-", text.lower()).strip("-")[:120] or "org"


def _lookup(table: Table, keys: tuple[str, ...], values: tuple[str, ...]) -> Any:
    """A prepared SELECT of id and ``values`` by ``keys`` (bound parameters)."""
    return select(table.c.id, *(table.c[v] for v in values)).where(
        *(table.c[k] == bindparam(f"k_{k}") for k in keys)
    )


_USER_FIELDS = ("name", "given_name", "family_name", "email")
_SELECT_USER = _lookup(_USERS, ("issuer", "sub"), ("locale", "last_launch_at", *_USER_FIELDS))
_SELECT_CONTEXT = _lookup(_CONTEXTS, ("issuer", "context_id"), ("label", "title"))
_SELECT_LINK = _lookup(_LINKS, ("issuer", "resource_link_id"), ("title",))


def _upsert_row(
    session: Session,
    table: Table,
    lookup: Any,
    keys: Mapping[str, Any],
    values: Mapping[str, Any],
    on_insert: Mapping[str, Any] | None = None,
    wrote: list[bool] | None = None,
) -> int:
    """Id of the row with ``keys``; inserted with ``values`` if absent, else updated
    where ``values`` differ. Two processes racing end with the same row."""
    conn = session.connection()
    params = {f"k_{k}": v for k, v in keys.items()}
    for _ in range(2):
        row = conn.execute(lookup, params).first()
        if row is not None:
            changed = {k: v for k, v in values.items() if row._mapping[k] != v}
            if changed:
                conn.execute(update(table).where(table.c.id == row.id).values(**changed))
                if wrote is not None:
                    wrote[0] = True
            return int(row.id)
        if wrote is not None:
            wrote[0] = True
        try:
            with session.begin_nested():
                return int(
                    conn.execute(
                        insert(table)
                        .values(**keys, **values, **(on_insert or {}))
                        .returning(table.c.id)
                    ).scalar_one()
                )
        except IntegrityError:
            continue  # inserted by another process meanwhile: read it
    raise RuntimeError(f"could not record a row of {table.name}")


class _GrantsIndex:
    """Per-process copy of the (small) coordinator grants table, refreshed every 10 s."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded_at = -1e9
        self._scopes: dict[tuple[str, str], frozenset[str]] = {}

    def scopes(self, session: Session, issuer: str, sub: str) -> frozenset[str]:
        now = time.monotonic()
        if now - self._loaded_at > GRANTS_CACHE_SECONDS:
            rows = session.execute(
                select(CoordinatorGrant.issuer, CoordinatorGrant.sub, CoordinatorGrant.scope)
            ).all()
            scopes: dict[tuple[str, str], set[str]] = {}
            for g_issuer, g_sub, scope in rows:
                scopes.setdefault((g_issuer, g_sub), set()).add(scope)
            with self._lock:
                self._scopes = {k: frozenset(v) for k, v in scopes.items()}
                self._loaded_at = now
        return self._scopes.get((issuer, sub), frozenset())

    def invalidate(self) -> None:
        with self._lock:
            self._loaded_at = -1e9


grants_index = _GrantsIndex()


def _organization_for(session: Session, launch: LaunchContext) -> int | None:
    """The deployment's organization, created on its first launch."""
    known = session.execute(
        select(Deployment.organization_id).where(Deployment.id == launch.deployment_pk)
    ).first()
    if known is None:
        return None
    if known[0] is not None:
        return int(known[0])
    deployment = session.get(Deployment, launch.deployment_pk)
    if deployment is None:
        return None
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
    org = session.scalars(select(Organization).where(Organization.slug == slug)).first()
    if org is None:
        try:
            with session.begin_nested():
                org = Organization(slug=slug, name=name[:255])
                session.add(org)
        except IntegrityError:
            org = session.scalars(select(Organization).where(Organization.slug == slug)).one()
    deployment.organization_id = org.id
    session.flush()
    return org.id


def record_launch(session: Session, launch: LaunchContext) -> LaunchContext:
    """Upsert the rows a launch names and return the launch with their ids and with the
    coordinator role when the person holds a grant. Commits."""
    now = utcnow()
    wrote = [False]
    # Keep only what the platform sends now: minimum personal information (Law 25).
    person = {
        "name": launch.name,
        "given_name": launch.given_name,
        "family_name": launch.family_name,
        "email": launch.email,
    }
    conn = session.connection()
    user = conn.execute(_SELECT_USER, {"k_issuer": launch.issuer, "k_sub": launch.sub}).first()
    if user is None:
        user_pk = _upsert_row(
            session,
            _USERS,
            _SELECT_USER,
            {"issuer": launch.issuer, "sub": launch.sub},
            person,
            {"last_launch_at": now, "created_at": now},
            wrote,
        )
        user_locale = None
    else:
        user_pk, user_locale = int(user.id), user.locale
        changed: dict[str, Any] = {k: v for k, v in person.items() if user._mapping[k] != v}
        last = user.last_launch_at
        if last is not None and last.tzinfo is None:
            last = last.replace(tzinfo=now.tzinfo)
        # The launch time is refreshed at most every LAST_LAUNCH_RESOLUTION, so a
        # returning person's launch usually writes nothing.
        if last is None or now - last > LAST_LAUNCH_RESOLUTION:
            changed["last_launch_at"] = now
        if changed:
            conn.execute(update(_USERS).where(_USERS.c.id == user_pk).values(**changed))
            wrote[0] = True

    context_pk = None
    if launch.context_id:
        context_pk = _upsert_row(
            session,
            _CONTEXTS,
            _SELECT_CONTEXT,
            {"issuer": launch.issuer, "context_id": launch.context_id},
            {
                "label": (launch.context_label or "")[:255],
                "title": (launch.context_title or "")[:512],
            },
            {"deployment_id": launch.deployment_pk, "created_at": now},
            wrote,
        )
    link_pk = None
    if launch.resource_link_id:
        link_pk = _upsert_row(
            session,
            _LINKS,
            _SELECT_LINK,
            {"issuer": launch.issuer, "resource_link_id": launch.resource_link_id},
            {"title": (launch.resource_link_title or "")[:512]},
            {"context_pk": context_pk, "deployment_id": launch.deployment_pk, "created_at": now},
            wrote,
        )

    org_pk = launch.organization_pk
    if org_pk is None:
        org_pk = _organization_for(session, launch)
        wrote[0] = True
    grant_scopes = grants_index.scopes(session, launch.issuer, launch.sub)
    is_coordinator = "*" in grant_scopes
    if grant_scopes and not is_coordinator and org_pk is not None:
        org = session.get(Organization, org_pk)
        is_coordinator = org is not None and org.slug in grant_scopes
    roles = launch.roles | {COORDINATOR} if is_coordinator else launch.roles
    # Nothing written (a returning person in a known course): no commit to pay for; the
    # request's teardown ends the read-only transaction.
    if wrote[0]:
        session.commit()
    return launch.with_changes(
        user_pk=user_pk,
        context_pk=context_pk,
        resource_link_pk=link_pk,
        organization_pk=org_pk,
        roles=frozenset(roles),
        locale=user_locale or launch.locale,
    )


def set_user_locale(session: Session, user_pk: int, locale: str) -> None:
    """Remember a person's language switch. Commits."""
    user = session.get(User, user_pk)
    if user is not None:
        user.locale = locale
        session.commit()
