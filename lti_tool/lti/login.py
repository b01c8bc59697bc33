"""Third-party-initiated login (OIDC step 1): /lti/login.

https://www.imsglobal.org/spec/security/v1p0#openid_connect_launch_flow
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from pylti1p3.contrib.flask import FlaskOIDCLogin
from pylti1p3.exception import OIDCException

from .errors import LtiError
from .http import check_platform_url
from .state import LoginState, LoginStateStore, new_nonce, new_state_value
from .toolconf import DbToolConf

LOGIN_PARAMS = (
    "iss",
    "login_hint",
    "target_link_uri",
    "lti_message_hint",
    "client_id",
    "lti_deployment_id",
    "lti_storage_target",
)
STATE_COOKIE_PREFIX = "lti1p3-"


@dataclass(frozen=True)
class LoginResult:
    """What the web layer must send: a redirect, a state cookie, maybe a storage page."""

    redirect_url: str
    state: str
    cookie_name: str
    cookie_max_age: int
    #: Set when the platform offered postMessage storage: (target frame, secret key, value).
    storage_target: str | None = None
    storage_key: str | None = None
    storage_value: str | None = None
    platform_origin: str | None = None


def state_cookie_name(state: str) -> str:
    return STATE_COOKIE_PREFIX + state


class ToolOIDCLogin(FlaskOIDCLogin):
    """pylti1p3's login with the state and nonce kept in the shared store."""

    def __init__(
        self,
        request: Any,
        tool_config: DbToolConf,
        states: LoginStateStore,
        params: Mapping[str, str],
        state_ttl: int,
    ) -> None:
        super().__init__(request, tool_config)
        self._states = states
        self._params = params
        self._state_ttl = state_ttl

    def _get_request_param(self, key: str) -> str:
        return self._params.get(key, "")

    def begin(self, launch_url: str, tool_host: str | None) -> LoginResult:
        """Validate the login request and prepare the authentication request.

        Raises :class:`LtiError` with a specific code for each bad input.
        """
        if not self._params.get("iss"):
            raise LtiError("login_missing_iss", "no iss parameter")
        if not self._params.get("login_hint"):
            raise LtiError("login_missing_login_hint", "no login_hint parameter")
        target = self._params.get("target_link_uri", "")
        if target and urlsplit(target).hostname != tool_host:
            raise LtiError("login_bad_target", f"target_link_uri {target!r} is not this tool")
        try:
            registration = self.validate_oidc_login()
        except OIDCException as exc:
            iss, client_id = self._params["iss"], self._params.get("client_id")
            several = len(self._tool_config.registrations_of_issuer(iss)) > 1
            code = (
                "login_missing_client_id" if several and not client_id else "unknown_registration"
            )
            raise LtiError(code, f"iss={iss!r} client_id={client_id!r}: {exc}") from exc
        auth_url = check_platform_url(str(registration.get_auth_login_url()), "auth_login_url")
        state_value = new_state_value()
        nonce = new_nonce()
        storage_target = self._params.get("lti_storage_target") or None
        storage_secret = secrets.token_urlsafe(24) if storage_target else None
        parts = urlsplit(auth_url)
        platform_origin = f"{parts.scheme}://{parts.netloc}"
        self._states.save(
            LoginState(
                state=state_value,
                nonce=nonce,
                issuer=str(registration.get_issuer()),
                client_id=str(registration.get_client_id()),
                login_params={k: self._params[k] for k in LOGIN_PARAMS if self._params.get(k)},
                storage_target=storage_target,
                storage_secret=storage_secret,
                platform_origin=platform_origin,
            )
        )
        query = {
            "scope": "openid",
            "response_type": "id_token",
            "response_mode": "form_post",
            "prompt": "none",
            "client_id": registration.get_client_id(),
            "redirect_uri": launch_url,
            "state": state_value,
            "nonce": nonce,
            "login_hint": self._params["login_hint"],
        }
        if self._params.get("lti_message_hint"):
            query["lti_message_hint"] = self._params["lti_message_hint"]
        separator = "&" if "?" in auth_url else "?"
        return LoginResult(
            redirect_url=auth_url + separator + urlencode(query),
            state=state_value,
            cookie_name=state_cookie_name(state_value),
            cookie_max_age=self._state_ttl,
            storage_target=storage_target,
            storage_key=f"dataide_state_{state_value}" if storage_target else None,
            storage_value=storage_secret,
            platform_origin=platform_origin,
        )
