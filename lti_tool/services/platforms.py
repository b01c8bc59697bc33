"""Registering platforms and managing their deployments (CLI, Dynamic Registration)."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, selectinload

from lti_tool.domain.urls import origin_of, platform_url_problem
from lti_tool.models import (
    DEPLOYMENT_ACTIVE,
    DEPLOYMENT_PENDING,
    Deployment,
    Organization,
    Registration,
    RegistrationInvitation,
)

from .launches import slugify


class PlatformError(ValueError):
    """A bad platform operation; the message says what to fix."""


@dataclass(frozen=True)
class PlatformSpec:
    """What an administrator (or Dynamic Registration) tells the tool about a platform."""

    issuer: str
    client_id: str
    auth_login_url: str
    auth_token_url: str
    key_set_url: str
    deployment_ids: tuple[str, ...] = ()
    name: str = ""
    auth_audience: str | None = None
    frame_origins: tuple[str, ...] = ()
    #: None keeps the registration's current setting (False for a new one).
    auto_approve: bool | None = None
    source: str = "manual"
    product_family: str = ""

    def problems(self) -> list[str]:
        out = []
        for label, url in (
            ("--issuer", self.issuer),
            ("--auth-login-url", self.auth_login_url),
            ("--auth-token-url", self.auth_token_url),
            ("--key-set-url", self.key_set_url),
        ):
            problem = platform_url_problem(url)
            if problem:
                out.append(f"{label} {url!r} {problem}")
        for origin in self.frame_origins:
            problem = platform_url_problem(origin)
            if problem:
                out.append(f"--frame-origin {origin!r} {problem}")
        if not self.client_id.strip():
            out.append("--client-id must not be empty")
        if any(not d.strip() for d in self.deployment_ids):
            out.append("--deployment-id must not be empty")
        return out


def default_frame_origins(spec: PlatformSpec) -> list[str]:
    """Origins that frame the tool: the issuer's and the login endpoint's, plus any given."""
    origins = {origin_of(spec.issuer), origin_of(spec.auth_login_url)}
    origins.update(origin_of(o) for o in spec.frame_origins)
    return sorted(o for o in origins if o)


def add_platform(session: Session, spec: PlatformSpec) -> Registration:
    """Create or update the registration (issuer, client_id) and add its deployments
    as active. Commits. Raises :class:`PlatformError` listing every bad field."""
    problems = spec.problems()
    if problems:
        raise PlatformError("; ".join(problems))
    reg = session.scalars(
        select(Registration).where(
            Registration.issuer == spec.issuer, Registration.client_id == spec.client_id
        )
    ).first()
    if reg is None:
        reg = Registration(issuer=spec.issuer, client_id=spec.client_id)
        session.add(reg)
    reg.name = spec.name or reg.name or origin_of(spec.issuer)
    reg.auth_login_url = spec.auth_login_url
    reg.auth_token_url = spec.auth_token_url
    reg.key_set_url = spec.key_set_url
    # Running `platform add` again updates what it is given and keeps the rest: extra
    # frame origins add up, an unset audience or auto-approve stays as it was.
    if spec.auth_audience is not None or reg.auth_audience is None:
        reg.auth_audience = spec.auth_audience
    reg.frame_origins = sorted({*(reg.frame_origins or []), *default_frame_origins(spec)})
    if spec.auto_approve is not None or reg.auto_approve is None:
        reg.auto_approve = bool(spec.auto_approve)
    if spec.source == "dynamic" or not reg.source:
        reg.source = spec.source
    reg.product_family = spec.product_family or reg.product_family or ""
    session.flush()
    for deployment_id in spec.deployment_ids:
        _activate(session, reg, deployment_id)
    session.commit()
    _frame_cache.clear()
    return reg


def _activate(session: Session, reg: Registration, deployment_id: str) -> Deployment:
    dep = session.scalars(
        select(Deployment).where(
            Deployment.registration_id == reg.id, Deployment.deployment_id == deployment_id
        )
    ).first()
    if dep is None:
        dep = Deployment(registration_id=reg.id, deployment_id=deployment_id)
        session.add(dep)
    if dep.status != DEPLOYMENT_ACTIVE:
        dep.status = DEPLOYMENT_ACTIVE
        dep.approved_at = datetime.now(UTC)
    session.flush()
    return dep


def list_platforms(session: Session) -> list[Registration]:
    return list(
        session.scalars(
            select(Registration)
            .options(selectinload(Registration.deployments))
            .order_by(Registration.issuer, Registration.client_id)
        )
    )


def _registration(session: Session, issuer: str, client_id: str | None) -> Registration:
    query = select(Registration).where(Registration.issuer == issuer)
    if client_id:
        query = query.where(Registration.client_id == client_id)
    rows = list(session.scalars(query))
    if not rows:
        raise PlatformError(
            f"no registration for issuer {issuer!r}"
            + (f" and client id {client_id!r}" if client_id else "")
            + "; see `lti-tool platform list`"
        )
    if len(rows) > 1:
        raise PlatformError(f"issuer {issuer!r} has several client ids: give --client-id")
    return rows[0]


def approve_deployment(
    session: Session, issuer: str, deployment_id: str, client_id: str | None = None
) -> Deployment:
    """Activate a (pending or new) deployment. Commits."""
    reg = _registration(session, issuer, client_id)
    dep = _activate(session, reg, deployment_id)
    session.commit()
    return dep


def pending_deployments(session: Session) -> list[Deployment]:
    return list(session.scalars(select(Deployment).where(Deployment.status == DEPLOYMENT_PENDING)))


def remove_platform(
    session: Session, issuer: str, client_id: str | None = None, deployment_id: str | None = None
) -> str:
    """Remove a deployment, or a whole registration. Commits; returns what was removed."""
    reg = _registration(session, issuer, client_id)
    if deployment_id:
        dep = session.scalars(
            select(Deployment).where(
                Deployment.registration_id == reg.id, Deployment.deployment_id == deployment_id
            )
        ).first()
        if dep is None:
            raise PlatformError(f"no deployment {deployment_id!r} for {issuer} / {reg.client_id}")
        session.delete(dep)
        session.commit()
        return f"deployment {deployment_id} of {issuer} / {reg.client_id}"
    session.delete(reg)
    session.commit()
    _frame_cache.clear()
    return f"registration {issuer} / {reg.client_id} and its deployments"


def set_organization(
    session: Session,
    issuer: str,
    deployment_id: str,
    org_slug: str,
    org_name: str | None = None,
    client_id: str | None = None,
) -> Organization:
    """Group a deployment under an organization (created if new). Commits."""
    reg = _registration(session, issuer, client_id)
    dep = session.scalars(
        select(Deployment).where(
            Deployment.registration_id == reg.id, Deployment.deployment_id == deployment_id
        )
    ).first()
    if dep is None:
        raise PlatformError(f"no deployment {deployment_id!r} for {issuer} / {reg.client_id}")
    slug = slugify(org_slug)
    org = session.scalars(select(Organization).where(Organization.slug == slug)).first()
    if org is None:
        org = Organization(slug=slug, name=org_name or org_slug)
        session.add(org)
        session.flush()
    elif org_name:
        org.name = org_name
    dep.organization_id = org.id
    session.commit()
    return org


# -- invitations (one-time Dynamic Registration URLs) -----------------------------------


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_invitation(session: Session, note: str = "", days: int = 7) -> str:
    """A new one-time invitation secret (only its hash is stored). Commits.

    Invitations expired for a month are deleted in passing: they can open nothing.
    """
    session.execute(
        delete(RegistrationInvitation).where(
            RegistrationInvitation.expires_at < datetime.now(UTC) - timedelta(days=30)
        )
    )
    token = secrets.token_urlsafe(32)
    session.add(
        RegistrationInvitation(
            token_hash=_hash(token),
            note=note,
            expires_at=datetime.now(UTC) + timedelta(days=days),
        )
    )
    session.commit()
    return token


def invitation_is_usable(session: Session, token: str | None) -> bool:
    if not token:
        return False
    inv = session.scalars(
        select(RegistrationInvitation).where(RegistrationInvitation.token_hash == _hash(token))
    ).first()
    return bool(inv and inv.used_at is None and inv.expires_at > datetime.now(UTC))


def use_invitation(session: Session, token: str) -> bool:
    """Mark the invitation used; False if it was not usable. Caller commits."""
    inv = session.scalars(
        select(RegistrationInvitation)
        .where(RegistrationInvitation.token_hash == _hash(token))
        .with_for_update()
    ).first()
    if not inv or inv.used_at is not None or inv.expires_at <= datetime.now(UTC):
        return False
    inv.used_at = datetime.now(UTC)
    return True


# -- frame origins for CSP ------------------------------------------------------------------


class _TtlCache:
    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._data: dict[object, tuple[float, list[str]]] = {}

    def get(self, key: object, compute: Callable[[], Iterable[str]]) -> list[str]:
        now = time.monotonic()
        hit = self._data.get(key)
        if hit and now - hit[0] < self.ttl:
            return hit[1]
        value = list(compute())
        self._data[key] = (now, value)
        return value

    def clear(self) -> None:
        self._data.clear()


_frame_cache = _TtlCache(30.0)


def frame_origins_of(session: Session, registration_pk: int) -> list[str]:
    """Origins allowed to frame pages of a launch of this registration."""

    def compute() -> list[str]:
        reg = session.get(Registration, registration_pk)
        return list(reg.frame_origins or []) if reg else []

    return _frame_cache.get(registration_pk, compute)


def all_frame_origins(session: Session) -> list[str]:
    """Origins of every registration (pages shown before a launch is known)."""

    def compute() -> list[str]:
        out: set[str] = set()
        for origins in session.scalars(select(Registration.frame_origins)):
            out.update(origins or [])
        return sorted(out)

    return _frame_cache.get("*", compute)
