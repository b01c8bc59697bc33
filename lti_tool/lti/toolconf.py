"""Registrations and deployments as database rows, behind pylti1p3's ToolConfAbstract."""

from __future__ import annotations

from typing import Any

from pylti1p3.deployment import Deployment as LibDeployment
from pylti1p3.registration import Registration as LibRegistration
from pylti1p3.tool_config import ToolConfAbstract
from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_tool.models import DEPLOYMENT_ACTIVE, Deployment, Registration

from .keys import signing_key


class DbRegistration(LibRegistration):
    """A library registration backed by a row; the tool key is decrypted only when used."""

    def __init__(self, row: Registration, session: Session, kek: str) -> None:
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

    def __init__(self, session: Session, kek: str) -> None:
        self._session = session
        self._kek = kek

    def check_iss_has_one_client(self, iss: str) -> bool:
        return False

    def check_iss_has_many_clients(self, iss: str) -> bool:
        return True

    def registration_row(self, iss: str, client_id: str | None) -> Registration | None:
        if not iss or not client_id:
            return None
        return self._session.scalars(
            select(Registration).where(
                Registration.issuer == iss, Registration.client_id == client_id
            )
        ).first()

    def registrations_of_issuer(self, iss: str) -> list[Registration]:
        return list(self._session.scalars(select(Registration).where(Registration.issuer == iss)))

    def find_registration_by_issuer(self, iss: str, *args: Any, **kwargs: Any) -> Any:
        rows = self.registrations_of_issuer(iss)
        return DbRegistration(rows[0], self._session, self._kek) if len(rows) == 1 else None

    def find_registration_by_params(
        self, iss: str, client_id: str, *args: Any, **kwargs: Any
    ) -> Any:
        row = self.registration_row(iss, client_id)
        if row is None and not client_id:
            return self.find_registration_by_issuer(iss)
        return DbRegistration(row, self._session, self._kek) if row else None

    def deployment_row(self, registration: Registration, deployment_id: str) -> Deployment | None:
        return self._session.scalars(
            select(Deployment).where(
                Deployment.registration_id == registration.id,
                Deployment.deployment_id == deployment_id,
            )
        ).first()

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
