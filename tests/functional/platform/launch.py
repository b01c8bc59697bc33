"""Launch vocabulary and the auth-request checks the consumer itself does not make.

Contract:

* Constants: default resource link / course context (shaped like the Open edX XBlock's launch
  data: context label = course key, title = "<course name> - <org>"), message types, claim URLs.
* ``AuthRequestError``: raised by ``Platform.id_token_for`` when it refuses an auth request.
* ``DeepLinkingResult``: one deep linking response received at the platform's return URL.
* ``normalize(params)`` turns any mapping (a ``parse_qs`` result with one-element lists, or a
  plain dict) into ``dict[str, str]``.
* ``spec_problems(params)`` lists (empty when fine) what the LTI 1.3 / OIDC specs require of the
  tool's auth request: ``scope`` contains ``openid``; ``response_type`` is ``id_token``;
  ``response_mode`` is ``form_post``; ``prompt`` is ``none``; ``login_hint`` and
  ``lti_message_hint`` present. (The consumer's ``_validate_preflight_response`` only checks
  nonce/state present, ``redirect_uri`` registered and ``client_id`` equal.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

DEFAULT_RESOURCE_LINK_ID = "block-v1:DATAide+M1+2026+type@lti_consumer+block@m1"
DEFAULT_COURSE_ID = "course-v1:DATAide+M1+2026"
DEFAULT_CONTEXT: Mapping[str, Any] = MappingProxyType(
    {
        "id": DEFAULT_COURSE_ID,
        "label": DEFAULT_COURSE_ID,
        "title": "DATAide Module 1 - DATAide",
        "type": ("course_offering",),
    }
)
RESOURCE_LINK_REQUEST = "LtiResourceLinkRequest"
DEEP_LINKING_REQUEST = "LtiDeepLinkingRequest"
DEEP_LINKING_SETTINGS_CLAIM = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"
ID_TOKEN_OPTIONS = frozenset(
    {"context", "custom", "ags", "ags_lineitem", "nrps", "deep_linking_settings"}
)

_EXPECTED = {"response_type": "id_token", "response_mode": "form_post", "prompt": "none"}


class AuthRequestError(ValueError):
    """The tool's OIDC authentication request was refused (harness or consumer check)."""


@dataclass
class DeepLinkingResult:
    """One ``LtiDeepLinkingResponse`` POSTed to the platform's return URL.

    Exactly one of ``content_items`` (accepted by the consumer) and ``error`` is set.
    """

    jwt: str
    content_items: list[dict[str, Any]] | None = None
    error: str | None = None


def normalize(params: Mapping[str, Any]) -> dict[str, str]:
    """Return single-valued string parameters (the only value of one-element lists)."""
    result: dict[str, str] = {}
    for name, value in params.items():
        if isinstance(value, list | tuple):
            if len(value) != 1:
                raise ValueError(f"parameter {name!r} must have one value, got {value!r}")
            result[name] = str(value[0])
        else:
            result[name] = str(value)
    return result


def spec_problems(params: Mapping[str, str]) -> list[str]:
    """What the auth request lacks or gets wrong, per the LTI 1.3 / OIDC specs."""
    problems: list[str] = []
    if "openid" not in params.get("scope", "").split():
        problems.append(f"scope must contain 'openid', got {params.get('scope')!r}")
    for name, expected in _EXPECTED.items():
        if params.get(name) != expected:
            problems.append(f"{name} must be {expected!r}, got {params.get(name)!r}")
    for name in ("login_hint", "lti_message_hint"):
        if not params.get(name):
            problems.append(f"{name} is missing or empty")
    return problems
