"""Thin bridge to Open edX's LTI 1.3 consumer (``lti-consumer-xblock``).

Importing this module configures Django (see ``_django``) and imports ``lti_consumer``; the
rest of the harness imports it lazily so that merely importing the harness package stays cheap.

Every LTI decision here is delegated to the consumer, the way the LMS views
(``lti_consumer.plugin.views``) drive it:

* ``preflight_url`` -> ``LtiConsumer1p3.prepare_preflight_url`` (third-party-initiated login);
* ``launch_request`` -> ``set_user_data`` / ``set_resource_link_claim`` /
  ``set_launch_presentation_claim`` / ``set_context_claim`` / ``set_custom_parameters`` /
  ``enable_ags`` / ``enable_nrps`` / ``enable_deep_linking`` and then
  ``LtiAdvantageConsumer.generate_launch_request`` (which runs the consumer's preflight checks);
* ``access_token`` -> ``LtiConsumer1p3.access_token`` with the LMS view's error mapping;
* ``deep_linking_content_items`` -> ``LtiAdvantageConsumer.check_and_decode_deep_linking_token``.
"""

from __future__ import annotations

import copy
import functools
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jwt

from ._django import import_lti_consumer
from .users import LaunchUser

import_lti_consumer()

# These imports need Django configured, hence after import_lti_consumer().
from lti_consumer.data import Lti1p3LaunchData  # noqa: E402
from lti_consumer.lti_1p3 import exceptions as lti_exceptions  # noqa: E402
from lti_consumer.lti_1p3.constants import (  # noqa: E402
    LTI_1P3_CONTEXT_ROLE_MAP,
    LTI_1P3_CONTEXT_TYPE,
    LTI_1P3_ROLE_MAP,
)
from lti_consumer.lti_1p3.consumer import LtiAdvantageConsumer  # noqa: E402
from lti_consumer.lti_1p3.key_handlers import PlatformKeyHandler  # noqa: E402
from lti_consumer.utils import get_data_from_cache  # noqa: E402

Lti1p3Exception = lti_exceptions.Lti1p3Exception
DEEP_LINKING_REQUEST = "LtiDeepLinkingRequest"
ROLES_CLAIM = "https://purl.imsglobal.org/spec/lti/claim/roles"
PRESENTATION_CLAIM = "https://purl.imsglobal.org/spec/lti/claim/launch_presentation"


@dataclass(frozen=True)
class ConsumerConfig:
    """Everything an ``LtiConfiguration`` row would hold for one tool placement."""

    issuer: str
    client_id: str
    deployment_id: str
    tool_login_url: str
    tool_launch_url: str
    deep_linking_launch_url: str
    deep_linking_return_url: str
    redirect_uris: tuple[str, ...]
    private_key_pem: str
    kid: str
    ags_lineitems_url: str
    ags_lineitem_url: str
    nrps_memberships_url: str
    tool_public_key_pem: str | None = None
    tool_keyset_url: str | None = None


@dataclass(frozen=True)
class LaunchSettings:
    """Per-login settings remembered between login initiation and the auth request."""

    message_type: str
    resource_link_id: str
    target_link_uri: str | None
    document_target: str | None = "iframe"
    return_url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def make_consumer(
    config: ConsumerConfig, *, message_type: str, target_link_uri: str | None
) -> LtiAdvantageConsumer:
    """Build the consumer as ``LtiConfiguration._get_lti_1p3_consumer`` does, DL enabled.

    ``target_link_uri`` (when given) replaces the launch URL of the message type at hand.
    """
    is_dl = message_type == DEEP_LINKING_REQUEST
    launch_url = target_link_uri if (target_link_uri and not is_dl) else config.tool_launch_url
    dl_url = target_link_uri if (target_link_uri and is_dl) else config.deep_linking_launch_url
    consumer = LtiAdvantageConsumer(
        iss=config.issuer,
        lti_oidc_url=config.tool_login_url,
        lti_launch_url=launch_url,
        client_id=config.client_id,
        deployment_id=config.deployment_id,
        rsa_key=config.private_key_pem,
        rsa_key_id=config.kid,
        redirect_uris=list(config.redirect_uris),
        tool_key=config.tool_public_key_pem,
        tool_keyset_url=config.tool_keyset_url,
    )
    # Always on: the consumer only emits LtiDeepLinkingRequest and only decodes deep linking
    # responses when ``dl`` is set up.
    consumer.enable_deep_linking(dl_url, config.deep_linking_return_url)
    return consumer


def split_roles(roles: list[str]) -> tuple[str | None, list[str]]:
    """Split ``LaunchUser.roles`` into (Open edX role name or None, verbatim extra roles)."""
    openedx = [role for role in roles if role in LTI_1P3_ROLE_MAP]
    if len(openedx) > 1:
        raise ValueError(f"Open edX sends exactly one platform role per launch, got {openedx}")
    extra = [role for role in roles if role not in LTI_1P3_ROLE_MAP]
    return (openedx[0] if openedx else None), extra


def context_roles(roles: list[str]) -> list[str]:
    """NRPS roles of a ``LaunchUser.roles`` list: Open edX names through the consumer's
    ``LTI_1P3_CONTEXT_ROLE_MAP`` (as its NRPS serializer does), other entries verbatim."""
    role, extra = split_roles(roles)
    mapped = list(LTI_1P3_CONTEXT_ROLE_MAP.get(role, [])) if role else []
    return list(dict.fromkeys([*mapped, *extra]))


def preflight_url(config: ConsumerConfig, user: LaunchUser, settings: LaunchSettings) -> str:
    """Return the consumer's login-initiation URL (tool login URL + query) for ``user``.

    The consumer caches the launch data under a key derived from (user_id, resource_link_id) and
    sends that key as ``lti_message_hint``. A fresh internal ``user_id`` per login keeps two
    logins of the same person (say, a resource link and a deep linking launch) apart, while
    ``external_user_id`` (= ``login_hint`` = ``sub``) stays ``user.sub``.
    """
    role, _extra = split_roles(user.roles)
    launch_data = Lti1p3LaunchData(
        user_id=f"{user.sub}#{uuid.uuid4().hex}",
        user_role=role,
        config_id=config.client_id,
        resource_link_id=settings.resource_link_id,
        preferred_username=user.preferred_username,
        name=user.name,
        email=user.email,
        external_user_id=user.sub,
        launch_presentation_document_target=settings.document_target,
        launch_presentation_return_url=settings.return_url,
        message_type=settings.message_type,
    )
    consumer = make_consumer(
        config, message_type=settings.message_type, target_link_uri=settings.target_link_uri
    )
    return str(consumer.prepare_preflight_url(launch_data))


def query_params(url: str) -> dict[str, str]:
    """Return the single-valued query parameters of ``url``."""
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def cached_launch_data(lti_message_hint: str) -> Any:
    """Return the consumer's cached ``Lti1p3LaunchData`` for a message hint, or None."""
    return get_data_from_cache(lti_message_hint)


def _context_types(types: list[str]) -> list[Any]:
    """Map Open edX slugs (``course_offering``) or full URIs to ``LTI_1P3_CONTEXT_TYPE``."""
    by_value = {member.value: member for member in LTI_1P3_CONTEXT_TYPE}
    return [by_value[item] if item in by_value else LTI_1P3_CONTEXT_TYPE[item] for item in types]


def launch_request(
    config: ConsumerConfig,
    auth_request: dict[str, str],
    user: LaunchUser,
    settings: LaunchSettings,
    *,
    context: Mapping[str, Any] | None,
    custom: dict[str, Any] | None,
    ags: bool,
    nrps: bool,
    ags_lineitem: str | bool | None = True,
) -> dict[str, str]:
    """Return the consumer's ``{"state", "id_token"}`` for a validated auth request.

    ``ags_lineitem``: ``True`` puts ``config.ags_lineitem_url`` in the AGS ``lineitem`` claim,
    a string puts that URL; both declarative (Open edX's default: ``lineitem.readonly``).
    ``None``/``False`` leaves ``lineitem`` out and enables the consumer's programmatic mode
    (scope ``lineitem`` instead of ``lineitem.readonly``).

    Raises the consumer's ``PreflightRequestValidationFailure`` when its preflight checks fail.
    """
    consumer = make_consumer(
        config, message_type=settings.message_type, target_link_uri=settings.target_link_uri
    )
    role, extra_roles = split_roles(user.roles)
    consumer.set_user_data(
        user_id=user.sub,
        role=role,
        full_name=user.name,
        email_address=user.email,
        preferred_username=user.preferred_username,
    )
    # No consumer API for these user claims; the user-data dict is the one part of the message
    # that every message type includes (extra claims are dropped from deep linking requests).
    user_claims = consumer.lti_claim_user_data
    user_claims[ROLES_CLAIM] = list(dict.fromkeys([*user_claims[ROLES_CLAIM], *extra_roles]))
    for claim in ("given_name", "family_name", "locale"):
        if getattr(user, claim) is not None:
            user_claims[claim] = getattr(user, claim)
    consumer.set_resource_link_claim(settings.resource_link_id)
    consumer.set_launch_presentation_claim(
        document_target=settings.document_target, return_url=settings.return_url
    )
    if user.locale is not None:
        consumer.lti_claim_launch_presentation[PRESENTATION_CLAIM]["locale"] = user.locale
    if context is not None:
        consumer.set_context_claim(
            context["id"],
            _context_types(list(context.get("type", []))),
            context.get("title"),
            context.get("label"),
        )
    if custom is not None:
        consumer.set_custom_parameters(custom)
    if ags:
        lineitem_url = config.ags_lineitem_url if ags_lineitem is True else ags_lineitem or None
        consumer.enable_ags(
            lineitems_url=config.ags_lineitems_url,
            lineitem_url=lineitem_url,
            allow_programmatic_grade_interaction=lineitem_url is None,
        )
    if nrps:
        consumer.enable_nrps(config.nrps_memberships_url)
    return dict(consumer.generate_launch_request(auth_request))


# Exact-type mapping copied from lti_consumer.plugin.views.access_token_endpoint (it compares
# ``exc_info[0]`` with ``==``/``in``, so subclasses such as ExpiredSignatureError fall through to
# "unidentified_error").
_TOKEN_ERRORS: tuple[tuple[tuple[type[BaseException], ...], str], ...] = (
    ((lti_exceptions.MissingRequiredClaim,), "invalid_request"),
    (
        (
            lti_exceptions.MalformedJwtToken,
            lti_exceptions.TokenSignatureExpired,
            jwt.exceptions.DecodeError,
        ),
        "invalid_grant",
    ),
    (
        (
            lti_exceptions.NoSuitableKeys,
            lti_exceptions.UnknownClientId,
            jwt.exceptions.InvalidSignatureError,
            KeyError,
            AttributeError,
        ),
        "invalid_client",
    ),
    ((lti_exceptions.UnsupportedGrantType,), "unsupported_grant_type"),
)


def access_token(config: ConsumerConfig, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """Run the consumer's client-credentials grant; return (HTTP status, JSON body)."""
    consumer = make_consumer(config, message_type="LtiResourceLinkRequest", target_link_uri=None)
    try:
        return 200, dict(consumer.access_token(form))
    except Exception as exc:  # the LMS view maps every error to a JSON answer, too
        for types, error in _TOKEN_ERRORS:
            if type(exc) in types:
                return 400, {"error": error}
        return 400, {"error": "unidentified_error"}


def deep_linking_content_items(config: ConsumerConfig, token: str) -> list[dict[str, Any]]:
    """Verify an ``LtiDeepLinkingResponse`` with the consumer and return its content items."""
    consumer = make_consumer(config, message_type=DEEP_LINKING_REQUEST, target_link_uri=None)
    return list(consumer.check_and_decode_deep_linking_token(token))


def verified_tool_claims(config: ConsumerConfig, token: str) -> dict[str, Any]:
    """Verify a tool-signed JWT with the consumer's ``ToolKeyHandler``; return all claims.

    The consumer checks only the signature and ``exp``/``iat``/``nbf``; callers check the rest.
    """
    consumer = make_consumer(config, message_type=DEEP_LINKING_REQUEST, target_link_uri=None)
    return dict(consumer.tool_jwt.validate_and_decode(token))


def public_jwk(private_key_pem: str, kid: str) -> dict[str, Any]:
    """Return the public JWK exactly as the LMS keyset endpoint serves it (no alg/use)."""
    return copy.deepcopy(dict(_public_jwk(private_key_pem, kid)))


@functools.lru_cache(maxsize=64)
def _public_jwk(private_key_pem: str, kid: str) -> MappingProxyType[str, Any]:
    # Cached because the key handler parses the PEM twice (~25 ms each) per call.
    keyset = PlatformKeyHandler(private_key_pem, kid).get_public_jwk()
    return MappingProxyType(keyset["keys"][0])
