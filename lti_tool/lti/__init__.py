"""The LTI boundary: the only package that imports pylti1p3 or names claim URLs.

:class:`LtiTool` is built once per application by ``create_app`` and used by the views.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from pylti1p3.contrib.flask import FlaskRequest
from sqlalchemy.orm import Session

from lti_tool.domain.launch import LaunchContext
from lti_tool.settings import Settings
from lti_tool.store import KeyValueStore

from .ags import AgsPublisher
from .deep_linking import LineItemSpec, ResourceLinkItem, sign_deep_linking_response
from .errors import LtiError, PendingDeployment, PlatformUnreachable, RosterRefused
from .http import PlatformHttp
from .keys import published_jwks
from .launch import CookiesBlocked, NeedsPlatformStorage, ToolMessageLaunch
from .launch_token import FORM_FIELD, HEADER, LaunchTokens
from .login import LoginResult, ToolOIDCLogin
from .nrps import NrpsRoster
from .platform_keys import PlatformKeyCache
from .services import service_token
from .state import LoginStateStore
from .toolconf import ConfigCache, DbToolConf

__all__ = [
    "FORM_FIELD",
    "HEADER",
    "AgsPublisher",
    "CookiesBlocked",
    "LineItemSpec",
    "LoginResult",
    "LtiError",
    "LtiTool",
    "NeedsPlatformStorage",
    "NrpsRoster",
    "PendingDeployment",
    "PlatformUnreachable",
    "ResourceLinkItem",
    "RosterRefused",
]


class LtiTool:
    """Entry points of the LTI core, bound to one application's settings and stores."""

    def __init__(self, settings: Settings, store: KeyValueStore) -> None:
        self.settings = settings
        self.store = store
        self.http = PlatformHttp(settings.http_timeout_seconds, settings.http_max_bytes)
        self.key_cache = PlatformKeyCache(self.http)
        self.states = LoginStateStore(store, settings.login_state_seconds)
        self.tokens = LaunchTokens(settings.secret_key, store, settings.launch_token_seconds)
        self.config_cache = ConfigCache()
        #: Grade passback and rosters; safe to share between delivery threads.
        self.ags = AgsPublisher(self, settings.http_timeout_seconds)
        self.nrps = NrpsRoster(self, settings.http_timeout_seconds)

    @property
    def launch_url(self) -> str:
        return self.settings.base_url + "/lti/launch"

    @property
    def login_url(self) -> str:
        return self.settings.base_url + "/lti/login"

    @property
    def jwks_url(self) -> str:
        return self.settings.base_url + "/lti/jwks"

    def _request(self, params: Mapping[str, str], cookies: Mapping[str, str]) -> Any:
        return FlaskRequest(
            cookies=dict(cookies),
            session={},
            request_data=dict(params) or {"_": ""},
            request_is_secure=self.settings.secure_cookies,
        )

    def begin_login(self, session: Session, params: Mapping[str, str]) -> LoginResult:
        """Validate a login initiation; raises :class:`LtiError`."""
        conf = DbToolConf(session, self.settings.key_encryption_key, self.config_cache)
        login = ToolOIDCLogin(
            self._request(params, {}), conf, self.states, params, self.settings.login_state_seconds
        )
        return login.begin(self.launch_url, urlsplit(self.settings.base_url).hostname)

    def validate_launch(
        self,
        session: Session,
        params: Mapping[str, str],
        cookies: Mapping[str, str],
        fallback_locale: str,
    ) -> LaunchContext:
        """Validate an id_token POST; raises :class:`LtiError` (nothing written then,
        except a pending deployment row for a valid launch from an unknown deployment)."""
        conf = DbToolConf(session, self.settings.key_encryption_key, self.config_cache)
        launch = ToolMessageLaunch(
            self._request(params, cookies),
            conf,
            session=session,
            params=params,
            cookies=cookies,
            states=self.states,
            store=self.store,
            key_cache=self.key_cache,
            leeway=self.settings.lti_leeway_seconds,
            requests_session=self.http.session,
        )
        launch.validate()
        return launch.launch_context(fallback_locale)

    def jwks(self, session: Session) -> dict[str, Any]:
        return published_jwks(session)

    def deep_linking_response(
        self, session: Session, launch: LaunchContext, items: Sequence[ResourceLinkItem]
    ) -> tuple[str, str]:
        """(return URL, signed JWT) for a mentor's selection."""
        return sign_deep_linking_response(session, self.settings.key_encryption_key, launch, items)

    def service_token(self, session: Session, registration_pk: int, scopes: Sequence[str]) -> str:
        """An AGS/NRPS access token, cached in the shared store."""
        return service_token(
            session,
            self.settings.key_encryption_key,
            self.store,
            self.settings.http_timeout_seconds,
            registration_pk,
            scopes,
        )
