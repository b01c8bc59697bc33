"""A hand-simulated LTI tool: what a spec-following tool sends and checks, for harness tests.

Contract (all pure helpers, no state):

* ``auth_request(login, redirect_uri=..., **changes)``: the OIDC authentication request a tool
  sends after receiving ``login`` (the platform's login parameters), with fresh state/nonce;
  a change of ``None`` drops that parameter.
* ``fetch_keyset(platform)`` / ``verify_id_token(platform, token)``: fetch the platform JWKS over
  HTTP and verify an id_token as a tool would (key by ``kid``; ``iss``, ``aud``, ``exp``).
* ``tool_jwt(claims, key_name=..., kid=...)``: a JWT signed by the tool's key
  (``cached_rsa_private_key_pem(key_name)``) with fresh ``iat``/``exp``/``jti``.
* ``client_assertion(platform)``: the RFC 7523 client assertion for ``platform``'s token URL.
* ``parse_html(text)``: forms (action, method, inputs), script nonces and the first attributes of
  each tag of a page.
"""

from __future__ import annotations

import time
import uuid
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any

import jwt
import requests

from .keys import cached_rsa_private_key_pem

if TYPE_CHECKING:
    from .core import Platform

LTI = "https://purl.imsglobal.org/spec/lti/claim"
AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS_CLAIM = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
DL = "https://purl.imsglobal.org/spec/lti-dl/claim"
SCORE_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
LINEITEM_RO_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOOL_KEY_NAME = "tool"
TOOL_KID = "tool-key-1"


def auth_request(
    login: dict[str, str], *, redirect_uri: str | None, **changes: str | None
) -> dict[str, str]:
    """The OIDC auth request a tool sends after ``login``; a ``None`` change drops a field."""
    request: dict[str, str | None] = {
        "scope": "openid",
        "response_type": "id_token",
        "response_mode": "form_post",
        "prompt": "none",
        "client_id": login["client_id"],
        "redirect_uri": redirect_uri,
        "login_hint": login["login_hint"],
        "lti_message_hint": login["lti_message_hint"],
        "state": f"state-{uuid.uuid4().hex}",
        "nonce": f"nonce-{uuid.uuid4().hex}",
    }
    request.update(changes)
    return {name: value for name, value in request.items() if value is not None}


def fetch_keyset(platform: Platform) -> jwt.PyJWKSet:
    """The platform keyset, fetched over HTTP as a tool would."""
    response = requests.get(platform.keyset_url, timeout=5)
    response.raise_for_status()
    return jwt.PyJWKSet.from_dict(response.json())


def verify_id_token(platform: Platform, token: str) -> dict[str, Any]:
    """Verify ``token`` as a tool would: key by kid from the served JWKS, iss, aud, exp."""
    key = fetch_keyset(platform)[jwt.get_unverified_header(token)["kid"]]
    claims: dict[str, Any] = jwt.decode(
        token, key, algorithms=["RS256"], audience=platform.client_id, issuer=platform.issuer
    )
    return claims


def tool_jwt(claims: dict[str, Any], *, key_name: str = TOOL_KEY_NAME, kid: str = TOOL_KID) -> str:
    """A JWT signed by the simulated tool."""
    now = int(time.time())
    payload = {"iat": now, "exp": now + 300, "jti": uuid.uuid4().hex, **claims}
    private_pem = cached_rsa_private_key_pem(key_name)
    return jwt.encode(payload, private_pem, algorithm="RS256", headers={"kid": kid})


def client_assertion(platform: Platform, *, key_name: str = TOOL_KEY_NAME) -> str:
    """The tool's client assertion for the platform's token endpoint."""
    audience = platform.auth_token_url
    claims = {"iss": platform.client_id, "sub": platform.client_id, "aud": audience}
    return tool_jwt(claims, key_name=key_name)


class PageInfo(HTMLParser):
    """Forms (with ``inputs``), script nonces and first attributes of each tag of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self.script_nonces: list[str | None] = []
        self.tags: dict[str, dict[str, str | None]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Record one start tag."""
        attributes = dict(attrs)
        self.tags.setdefault(tag, attributes)
        if tag == "form":
            self.forms.append({**attributes, "inputs": {}})
        elif tag == "input" and self.forms:
            self.forms[-1]["inputs"][attributes.get("name")] = attributes.get("value")
        elif tag == "script":
            self.script_nonces.append(attributes.get("nonce"))


def parse_html(text: str) -> PageInfo:
    """Parse ``text`` into a ``PageInfo``."""
    parser = PageInfo()
    parser.feed(text)
    return parser
