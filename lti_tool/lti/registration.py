"""LTI Dynamic Registration, tool side (https://www.imsglobal.org/spec/lti-dr/v1p0).

The platform opens ``/lti/register?openid_configuration=...&registration_token=...``; the
tool fetches the platform's configuration (only that URL, with timeouts and a size
limit), shows one confirmation form, then posts its configuration to the platform's
``registration_endpoint``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeTimedSerializer
from pylti1p3.dynamic_registration import DynamicRegistration

from lti_tool.domain.urls import origin_of, url_is_under

from . import claims as c
from .errors import LtiError
from .http import PlatformHttp, check_platform_url

PLATFORM_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-platform-configuration"
TOOL_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-tool-configuration"


@dataclass(frozen=True)
class PlatformConfiguration:
    """The parts of a platform's OpenID configuration the tool uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    registration_endpoint: str
    product_family: str
    platform_name: str
    token_audience: str | None
    configuration_url: str

    @property
    def origin(self) -> str:
        return origin_of(self.configuration_url)


@dataclass(frozen=True)
class RegisteredPlatform:
    configuration: PlatformConfiguration
    client_id: str
    deployment_id: str | None


class ToolDynamicRegistration(DynamicRegistration):
    """The tool's registration request, built by pylti1p3 from these getters."""

    client_name = "DATAide"
    description = (
        "DATAide : modules, expérimentations et badges numériques pour les organismes "
        "communautaires / DATAide: modules, experiments and badges for community organizations"
    )

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def get_initiate_login_uri(self) -> str:
        return self.base_url + "/lti/login"

    def get_jwks_uri(self) -> str:
        return self.base_url + "/lti/jwks"

    def get_redirect_uris(self) -> list[str]:
        return [self.base_url + "/lti/launch"]

    def get_target_link_uri(self) -> str:
        return self.base_url + "/lti/launch"

    def get_domain(self) -> str:
        return urlsplit(self.base_url).netloc

    def get_scopes(self) -> list[str]:
        return list(c.REGISTRATION_SCOPES)

    def get_claims(self) -> list[str]:
        return list(c.REGISTRATION_CLAIMS)

    def get_logo_uri(self) -> str:
        return self.base_url + "/static/logo.svg"

    def get_messages(self) -> list[dict[str, Any]]:
        return [
            {"type": c.RESOURCE_LINK_REQUEST, "target_link_uri": self.get_target_link_uri()},
            {
                "type": c.DEEP_LINKING_REQUEST,
                "target_link_uri": self.get_target_link_uri(),
                "label": "DATAide",
                "label#fr": "DATAide",
                "label#en": "DATAide",
            },
        ]


class DynamicRegistrar:
    """Runs the two steps of Dynamic Registration with the tool's HTTP limits."""

    def __init__(self, base_url: str, secret_key: str, http: PlatformHttp) -> None:
        self._tool = ToolDynamicRegistration(base_url)
        self._http = http
        self._serializer = URLSafeTimedSerializer(secret_key, salt="dataide-registration")

    def fetch_configuration(self, configuration_url: str) -> PlatformConfiguration:
        """Fetch and check the platform's OpenID configuration. Raises :class:`LtiError`."""
        if not configuration_url:
            raise LtiError("registration_missing_configuration", "no openid_configuration")
        check_platform_url(configuration_url, "openid_configuration")
        doc = self._http.get_json(configuration_url, "OpenID configuration")
        if not isinstance(doc, dict):
            raise LtiError("registration_bad_configuration", "configuration is not an object")
        fields = {}
        for name in (
            "issuer",
            "authorization_endpoint",
            "token_endpoint",
            "jwks_uri",
            "registration_endpoint",
        ):
            value = doc.get(name)
            if not isinstance(value, str) or not value:
                raise LtiError("registration_bad_configuration", f"configuration has no {name}")
            check_platform_url(value, name)
            fields[name] = value
        # The spec binds the configuration URL to its issuer, so a page cannot register the
        # tool on behalf of another platform.
        if not url_is_under(configuration_url, fields["issuer"]):
            raise LtiError(
                "registration_issuer_mismatch",
                f"{configuration_url} does not start with issuer {fields['issuer']}",
            )
        platform = doc.get(PLATFORM_CONFIGURATION) or {}
        if not isinstance(platform, dict):
            platform = {}
        audience = doc.get("authorization_server")
        return PlatformConfiguration(
            issuer=fields["issuer"],
            authorization_endpoint=fields["authorization_endpoint"],
            token_endpoint=fields["token_endpoint"],
            jwks_uri=fields["jwks_uri"],
            registration_endpoint=fields["registration_endpoint"],
            product_family=str(platform.get("product_family_code", ""))[:64],
            platform_name=str(platform.get("product_family_code") or origin_of(fields["issuer"]))[
                :255
            ],
            token_audience=audience if isinstance(audience, str) and audience else None,
            configuration_url=configuration_url,
        )

    def confirmation_token(self, configuration_url: str, registration_token: str) -> str:
        """Signed form token binding the confirmation to these parameters (no cookies)."""
        return str(self._serializer.dumps([configuration_url, registration_token]))

    def check_confirmation(
        self, token: str, configuration_url: str, registration_token: str
    ) -> None:
        try:
            data = self._serializer.loads(token, max_age=1800)
        except BadSignature as exc:
            raise LtiError("registration_form_expired", "confirmation token invalid") from exc
        if data != [configuration_url, registration_token]:
            raise LtiError("registration_form_expired", "confirmation token mismatch")

    def register(
        self, configuration: PlatformConfiguration, registration_token: str
    ) -> RegisteredPlatform:
        """Post the tool's configuration; return the client id the platform assigned."""
        body = self._tool.lti_registration_data()
        headers = {"Content-Type": "application/json"}
        if registration_token:
            headers["Authorization"] = "Bearer " + registration_token
        status, answer = self._http.post_json(
            configuration.registration_endpoint, "registration endpoint", body, headers
        )
        if status not in (200, 201) or not isinstance(answer, dict):
            raise LtiError(
                "registration_refused",
                f"registration endpoint answered HTTP {status}",
                status=502,
            )
        client_id = answer.get("client_id")
        if not isinstance(client_id, str | int) or str(client_id) == "":
            raise LtiError("registration_refused", "no client_id in the answer", status=502)
        tool_conf = answer.get(TOOL_CONFIGURATION) or {}
        deployment_id = tool_conf.get("deployment_id") if isinstance(tool_conf, dict) else None
        return RegisteredPlatform(
            configuration=configuration,
            client_id=str(client_id),
            deployment_id=str(deployment_id) if deployment_id not in (None, "") else None,
        )
