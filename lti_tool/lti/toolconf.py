"""Registrations and deployments as database rows, behind pylti1p3's ToolConfAbstract.

Every launch needs its registration (at login and at launch) and its deployment. They
change rarely, so each process keeps a snapshot for ``CACHE_SECONDS``: a removed
platform or an approved deployment takes effect on every process within that time (the
process that made the change sees it at once). Pending and unknown deployments are
never cached, nor are unknown registrations (a platform registered a moment ago must
launch at once).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from pylti1p3.deployment import Deployment as LibDeployment
from pylti1p3.registration import Registration as LibRegistration
from pylti1p3.tool_config import ToolConfAbstract
from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_tool.models import DEPLOYMENT_ACTIVE, Deployment, Registration

from .keys import signing_key

CACHE_SECONDS = 10.0


@dataclass(frozen=True)
class RegistrationInfo:
    """What the launch path needs of a registration row."""

    id: int
    issuer: str
    client_id: str
    auth_login_url: str
    auth_token_url: str
    auth_audience: str | None
    key_set_url: str
    auto_approve: bool
    frame_origins: tuple[str, ...]

    @classmethod
    def of(cls, row: Registration) -> RegistrationInfo:
        return cls(
            id=row.id,
            issuer=row.issuer,
            client_id=row.client_id,
            auth_login_url=row.auth_login_url,
            auth_token_url=row.auth_token_url,
            auth_audience=row.auth_audience,
            key_set_url=row.key_set_url,
            auto_approve=row.auto_approve,
            frame_origins=tuple(row.frame_origins or ()),
        )


@dataclass(frozen=True)
class DeploymentInfo:
    id: int
    deployment_id: str
    status: str
    organization_id: int | None


class ConfigCache:
    """Per-process snapshots of registrations and active deployments."""

    def __init__(self, ttl: float = CACHE_SECONDS, clock: Any = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._registrations: dict[tuple[str, str], tuple[float, RegistrationInfo | None]] = {}
        self._deployments: dict[tuple[int, str], tuple[float, DeploymentInfo]] = {}

    def registration(self, key: tuple[str, str]) -> tuple[bool, RegistrationInfo | None]:
        hit = self._registrations.get(key)
        if hit and self._clock() - hit[0] < self.ttl:
            return True, hit[1]
        return False, None

    def set_registration(self, key: tuple[str, str], info: RegistrationInfo | None) -> None:
        with self._lock:
            self._registrations[key] = (self._clock(), info)

    def deployment(self, key: tuple[int, str]) -> DeploymentInfo | None:
        hit = self._deployments.get(key)
        if hit and self._clock() - hit[0] < self.ttl:
            return hit[1]
        return None

    def set_deployment(self, key: tuple[int, str], info: DeploymentInfo) -> None:
        # A deployment gets its organization on its first launch: cache it only then, so
        # the following launches do not look the organization up again.
        if info.status == DEPLOYMENT_ACTIVE and info.organization_id is not None:
            with self._lock:
                self._deployments[key] = (self._clock(), info)

    def clear(self) -> None:
        with self._lock:
            self._registrations.clear()
            self._deployments.clear()


class DbRegistration(LibRegistration):
    """A library registration backed by a row; the tool key is decrypted only when used."""

    def __init__(self, row: RegistrationInfo | Registration, session: Session, kek: str) -> None:
        super().__init__()
        self.row = row
        self._session = session
        self._kek = kek
        self._signing: Any = None
        self.set_issuer(row.issuer)
        self.set_client_id(row.client_id)
        self.set_auth_login_url(row.auth_login_url)
        self.set_auth_token_url(row.auth_token_url)
        self.set_key_set_url(row.key_set_url)
        if row.auth_audience:
            self.set_auth_audience(row.auth_audience)

    def _key(self) -> Any:
        if self._signing is None:
            self._signing = signing_key(self._session, self._kek)
        return self._signing

    def get_tool_private_key(self) -> str:
        return str(self._key().private_pem)

    def get_tool_public_key(self) -> str:
        return str(self._key().public_pem)

    def get_kid(self) -> str:
        return str(self._key().kid)


class DbToolConf(ToolConfAbstract[Any]):
    """Every issuer may have many client ids (Open edX: one per block)."""

    def __init__(self, session: Session, kek: str, cache: ConfigCache | None = None) -> None:
        self._session = session
        self._kek = kek
        self._cache = cache or ConfigCache(ttl=0)

    def check_iss_has_one_client(self, iss: str) -> bool:
        return False

    def check_iss_has_many_clients(self, iss: str) -> bool:
        return True

    def registration_row(self, iss: str, client_id: str | None) -> RegistrationInfo | None:
        if not iss or not client_id:
            return None
        key = (iss, client_id)
        found, info = self._cache.registration(key)
        if found:
            return info
        row = self._session.scalars(
            select(Registration).where(
                Registration.issuer == iss, Registration.client_id == client_id
            )
        ).first()
        if row is None:
            return None
        info = RegistrationInfo.of(row)
        self._cache.set_registration(key, info)
        return info

    def registrations_of_issuer(self, iss: str) -> list[Registration]:
        return list(self._session.scalars(select(Registration).where(Registration.issuer == iss)))

    def find_registration_by_issuer(self, iss: str, *args: Any, **kwargs: Any) -> Any:
        rows = self.registrations_of_issuer(iss)
        return DbRegistration(rows[0], self._session, self._kek) if len(rows) == 1 else None

    def find_registration_by_params(
        self, iss: str, client_id: str, *args: Any, **kwargs: Any
    ) -> Any:
        info = self.registration_row(iss, client_id)
        if info is None and not client_id:
            return self.find_registration_by_issuer(iss)
        return DbRegistration(info, self._session, self._kek) if info else None

    def deployment_row(
        self, registration: RegistrationInfo, deployment_id: str
    ) -> DeploymentInfo | None:
        key = (registration.id, deployment_id)
        cached = self._cache.deployment(key)
        if cached is not None:
            return cached
        row = self._session.scalars(
            select(Deployment).where(
                Deployment.registration_id == registration.id,
                Deployment.deployment_id == deployment_id,
            )
        ).first()
        if row is None:
            return None
        info = DeploymentInfo(row.id, row.deployment_id, row.status, row.organization_id)
        self._cache.set_deployment(key, info)
        return info

    def find_deployment(self, iss: str, deployment_id: str) -> Any:
        raise NotImplementedError("every issuer may have several client ids")

    def find_deployment_by_params(
        self, iss: str, deployment_id: str, client_id: str, *args: Any, **kwargs: Any
    ) -> Any:
        reg = self.registration_row(iss, client_id)
        dep = self.deployment_row(reg, deployment_id) if reg else None
        if dep is None or dep.status != DEPLOYMENT_ACTIVE:
            return None
        return LibDeployment().set_deployment_id(dep.deployment_id)
