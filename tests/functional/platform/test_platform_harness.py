"""Tests of the LTI 1.3 platform harness itself, with a hand-simulated tool (no real tool).

The "tool" here is a few lines that build what a spec-following tool sends (an OIDC auth
request, a client assertion, a deep linking response) so the harness can be trusted before the
real tool is tested against it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit

import jwt
import pytest
import requests

from . import (
    DEEP_LINKING_REQUEST,
    DEEP_LINKING_SETTINGS_CLAIM,
    DEFAULT_COURSE_ID,
    DEFAULT_RESOURCE_LINK_ID,
    OPENEDX_INSTRUCTOR_ROLES,
    OPENEDX_LEARNER_ROLES,
    ROLE_CONTENT_DEVELOPER,
    AuthRequestError,
    LaunchUser,
    Platform,
    cached_rsa_private_key_pem,
    public_key_pem,
)
from . import tool_sim as tool
from .server import LoopbackServer, Request, Response
from .tool_sim import (
    AGS_CLAIM,
    ASSERTION_TYPE,
    DL,
    LINEITEM_RO_SCOPE,
    LTI,
    NRPS_CLAIM,
    SCORE_SCOPE,
    TOOL_KID,
    fetch_keyset,
    parse_html,
    tool_jwt,
    verify_id_token,
)

TOOL_BASE_URL = "http://localhost:8999"
TOOL_LAUNCH_URL = f"{TOOL_BASE_URL}/lti/launch"


@pytest.fixture
def platform() -> Iterator[Platform]:
    """A running platform that knows the simulated tool's public key."""
    tool_public = public_key_pem(cached_rsa_private_key_pem(tool.TOOL_KEY_NAME))
    with Platform(tool_base_url=TOOL_BASE_URL, tool_public_key_pem=tool_public) as running:
        yield running


def auth_request(login: dict[str, str], **changes: str | None) -> dict[str, str]:
    """The simulated tool's auth request, redirecting to its launch URL."""
    return tool.auth_request(login, **{"redirect_uri": TOOL_LAUNCH_URL, **changes})


def test_login_params_come_from_the_consumer(platform: Platform) -> None:
    login = platform.login_params(LaunchUser.learner("ada"))
    assert set(login) == {
        "iss", "client_id", "lti_deployment_id", "target_link_uri", "login_hint",
        "lti_message_hint",
    }  # fmt: skip
    assert login["iss"] == platform.issuer == platform.base_url
    assert login["client_id"] == "dataide-client"
    assert login["lti_deployment_id"] == "1"
    assert login["target_link_uri"] == TOOL_LAUNCH_URL
    assert login["login_hint"] == "ada"
    with_storage = platform.login_params(LaunchUser.learner("ada"), lti_storage_target="_parent")
    assert with_storage["lti_storage_target"] == "_parent"
    assert with_storage["lti_message_hint"] != login["lti_message_hint"]


def test_id_token_verifies_against_served_jwks_with_expected_claims(platform: Platform) -> None:
    login = platform.login_params(LaunchUser.learner("ada"))
    request = auth_request(login)
    response = platform.id_token_for(request, custom={"module": "m1"})
    assert response["state"] == request["state"]

    claims = verify_id_token(platform, response["id_token"])
    assert platform.jwks_requests == 1
    assert claims["nonce"] == request["nonce"]
    assert claims["sub"] == "ada"
    assert claims["aud"] == claims["azp"] == platform.client_id
    assert claims[f"{LTI}/deployment_id"] == "1"
    assert claims[f"{LTI}/message_type"] == "LtiResourceLinkRequest"
    assert claims[f"{LTI}/version"] == "1.3.0"
    assert claims[f"{LTI}/target_link_uri"] == TOOL_LAUNCH_URL
    assert claims[f"{LTI}/resource_link"] == {"id": DEFAULT_RESOURCE_LINK_ID}
    assert set(claims[f"{LTI}/roles"]) == OPENEDX_LEARNER_ROLES
    assert claims[f"{LTI}/custom"] == {"module": "m1"}
    assert claims[f"{LTI}/context"]["id"] == DEFAULT_COURSE_ID
    assert claims[f"{LTI}/launch_presentation"] == {"document_target": "iframe", "locale": "en"}
    assert (claims["given_name"], claims["family_name"], claims["locale"]) == (
        "Ada",
        "Learner",
        "en",
    )
    assert claims["email"] == "ada@example.org"
    assert claims[AGS_CLAIM]["lineitems"] == platform.ags_lineitems_url
    assert SCORE_SCOPE in claims[AGS_CLAIM]["scope"]
    assert claims[NRPS_CLAIM]["context_memberships_url"] == platform.nrps_memberships_url
    assert claims["exp"] - claims["iat"] == 3600


def test_roles_optional_claims_and_services_can_be_left_out(platform: Platform) -> None:
    user = LaunchUser(sub="grace", roles=["instructor", ROLE_CONTENT_DEVELOPER])
    login = platform.login_params(user)
    token = platform.id_token_for(auth_request(login), context=None, ags=False, nrps=False)
    claims = verify_id_token(platform, token["id_token"])
    assert set(claims[f"{LTI}/roles"]) == OPENEDX_INSTRUCTOR_ROLES | {ROLE_CONTENT_DEVELOPER}
    for absent in ("name", "email", "given_name", "locale", f"{LTI}/context", f"{LTI}/custom"):
        assert absent not in claims
    assert AGS_CLAIM not in claims
    assert NRPS_CLAIM not in claims
    with pytest.raises(ValueError, match="exactly one platform role"):
        platform.login_params(LaunchUser(sub="x", roles=["student", "staff"]))


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"redirect_uri": "https://evil.example/launch"}, "consumer refused"),
        ({"client_id": "someone-else"}, "consumer refused"),
        ({"nonce": None}, "consumer refused"),
        ({"state": None}, "consumer refused"),
        ({"lti_message_hint": "never-issued"}, "unknown lti_message_hint"),
        ({"login_hint": "mallory"}, "not the user's sub"),
        ({"response_mode": None}, "response_mode must be 'form_post'"),
        ({"scope": "profile"}, "scope must contain 'openid'"),
        ({"prompt": "login"}, "prompt must be 'none'"),
    ],
)
def test_auth_request_refusals(
    platform: Platform, changes: dict[str, str | None], reason: str
) -> None:
    login = platform.login_params(LaunchUser.learner())
    with pytest.raises(AuthRequestError, match=reason):
        platform.id_token_for(auth_request(login, **changes))


def test_non_strict_platform_only_applies_consumer_checks(platform: Platform) -> None:
    platform.strict_auth_request = False
    login = platform.login_params(LaunchUser.learner())
    request = auth_request(login, response_mode=None, prompt=None, scope=None)
    assert verify_id_token(platform, platform.id_token_for(request)["id_token"])["sub"]


def test_overrides_remove_and_header_overrides_resign(platform: Platform) -> None:
    login = platform.login_params(LaunchUser.learner())
    untouched = platform.id_token_for(auth_request(login))["id_token"]
    assert jwt.get_unverified_header(untouched) == {
        "alg": "RS256", "kid": platform.current_kid, "typ": "JWT",
    }  # fmt: skip

    other_deployment = {f"{LTI}/deployment_id": "2"}
    spoiled = platform.id_token_for(
        auth_request(login), overrides=other_deployment, remove=["nonce"]
    )["id_token"]
    claims = verify_id_token(platform, spoiled)
    assert claims[f"{LTI}/deployment_id"] == "2"
    assert "nonce" not in claims

    unknown_kid = platform.id_token_for(auth_request(login), header_overrides={"kid": "unknown"})[
        "id_token"
    ]
    assert jwt.get_unverified_header(unknown_kid)["kid"] == "unknown"
    current_key = fetch_keyset(platform)[platform.current_kid]
    assert jwt.decode(unknown_kid, current_key, algorithms=["RS256"], audience="dataide-client")

    no_kid = platform.id_token_for(auth_request(login), header_overrides={"kid": None})
    assert "kid" not in jwt.get_unverified_header(no_kid["id_token"])


def test_sign_keeps_the_header_verbatim(platform: Platform) -> None:
    token = platform.sign({"hello": "world"}, {"alg": "RS512", "typ": None})
    assert jwt.get_unverified_header(token) == {"alg": "RS512", "kid": platform.current_kid}
    key = fetch_keyset(platform)[platform.current_kid].key
    header_b64, payload_b64, signature_b64 = token.split(".")
    signature = jwt.utils.base64url_decode(signature_b64)
    algorithm = jwt.get_algorithm_by_name("RS256")
    assert algorithm.verify(f"{header_b64}.{payload_b64}".encode(), key, signature)


def test_auth_endpoint_auto_posts_the_launch_under_a_strict_csp(platform: Platform) -> None:
    login = platform.login_params(LaunchUser.learner(), auth_options={"custom": {"k": "v"}})
    request = auth_request(login)
    response = requests.get(platform.auth_login_url, params=request, timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    csp = response.headers["Content-Security-Policy"]
    page = parse_html(response.text)
    [form] = page.forms
    assert form["method"] == "post"
    assert form["action"] == request["redirect_uri"]
    assert set(form["inputs"]) == {"id_token", "state"}
    assert form["inputs"]["state"] == request["state"]
    assert page.script_nonces
    assert f"'nonce-{page.script_nonces[0]}'" in csp
    assert "default-src 'none'" in csp
    assert "unsafe-inline" not in csp
    claims = verify_id_token(platform, form["inputs"]["id_token"])
    assert claims[f"{LTI}/custom"] == {"k": "v"}
    assert platform.auth_requests == 1
    assert platform.issued_id_tokens == [form["inputs"]["id_token"]]

    refused = requests.get(platform.auth_login_url, params={**request, "nonce": ""}, timeout=5)
    assert refused.status_code == 400
    assert platform.auth_errors
    assert "consumer refused" in platform.auth_errors[-1]


def test_key_rotation_publishes_old_and_new_keys(platform: Platform) -> None:
    old_kid = platform.current_kid
    new_kid = platform.rotate_key()
    keys = requests.get(platform.keyset_url, timeout=5).json()["keys"]
    assert [key["kid"] for key in keys] == [new_kid, old_kid]
    assert all(key["alg"] == "RS256" and key["use"] == "sig" for key in keys)
    assert keys[0]["n"] != keys[1]["n"]
    login = platform.login_params(LaunchUser.learner())
    token = platform.id_token_for(auth_request(login))["id_token"]
    assert jwt.get_unverified_header(token)["kid"] == new_kid
    verify_id_token(platform, token)

    only_new = platform.rotate_key(keep_old=False)
    assert [key["kid"] for key in platform.jwks()["keys"]] == [only_new]
    assert platform.jwks_requests == 2


def _token_request(platform: Platform, **changes: str | None) -> requests.Response:
    form: dict[str, str | None] = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": tool.client_assertion(platform),
        "scope": f"{SCORE_SCOPE} {LINEITEM_RO_SCOPE} https://example.org/not-a-scope",
    }
    form.update(changes)
    data = {name: value for name, value in form.items() if value is not None}
    return requests.post(platform.auth_token_url, data=data, timeout=5)


def test_token_endpoint_issues_a_service_token(platform: Platform) -> None:
    response = _token_request(platform)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == f"{SCORE_SCOPE} {LINEITEM_RO_SCOPE}"
    access = jwt.decode(
        body["access_token"], fetch_keyset(platform)[platform.current_kid], algorithms=["RS256"]
    )
    assert access["iss"] == platform.issuer
    assert access["scopes"] == body["scope"]
    assert platform.token_requests == 1


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"scope": None}, "invalid_request"),
        ({"grant_type": "password"}, "unsupported_grant_type"),
        ({"client_assertion": "not-a-jwt"}, "invalid_grant"),
    ],
)
def test_token_endpoint_errors(
    platform: Platform, changes: dict[str, str | None], error: str
) -> None:
    response = _token_request(platform, **changes)
    assert (response.status_code, response.json()) == (400, {"error": error})


def test_token_endpoint_rejects_a_foreign_key(platform: Platform) -> None:
    forged = tool.client_assertion(platform, key_name="not-the-tool")
    response = _token_request(platform, client_assertion=forged)
    assert (response.status_code, response.json()) == (400, {"error": "invalid_client"})


def test_token_endpoint_fetches_the_tool_keyset_url() -> None:
    tool_public = public_key_pem(cached_rsa_private_key_pem(tool.TOOL_KEY_NAME))
    rs256 = jwt.get_algorithm_by_name("RS256")
    jwk = rs256.to_jwk(rs256.prepare_key(tool_public), as_dict=True)
    tool_jwks = LoopbackServer(
        lambda _request: Response.json(200, {"keys": [{**jwk, "kid": TOOL_KID}]})
    )
    tool_jwks.start()
    try:
        url = f"http://127.0.0.1:{tool_jwks.port}/lti/jwks"
        with Platform(tool_base_url=TOOL_BASE_URL, tool_key_set_url=url) as platform:
            assert _token_request(platform).status_code == 200
    finally:
        tool_jwks.stop()


def test_deep_linking_round_trip(platform: Platform) -> None:
    login = platform.login_params(LaunchUser.instructor(), message_type=DEEP_LINKING_REQUEST)
    request = auth_request(login)
    token = platform.id_token_for(request, deep_linking_settings={"data": "opaque-42"})
    claims = verify_id_token(platform, token["id_token"])
    assert claims[f"{LTI}/message_type"] == DEEP_LINKING_REQUEST
    assert f"{LTI}/resource_link" not in claims
    assert AGS_CLAIM not in claims
    settings = claims[DEEP_LINKING_SETTINGS_CLAIM]
    assert settings["data"] == "opaque-42"
    assert settings["deep_link_return_url"] == platform.deep_linking_return_url
    assert "ltiResourceLink" in settings["accept_types"]

    item = {"type": "ltiResourceLink", "title": "M1", "url": TOOL_LAUNCH_URL}
    reply = tool_jwt({
        "iss": platform.client_id, "aud": platform.issuer, "nonce": uuid.uuid4().hex,
        f"{LTI}/deployment_id": "1", f"{LTI}/version": "1.3.0",
        f"{LTI}/message_type": "LtiDeepLinkingResponse",
        f"{DL}/content_items": [item],
        f"{DL}/data": settings["data"],
    })  # fmt: skip
    assert platform.decode_deep_linking_response(reply) == [item]
    echoed = platform.deep_linking_response_claims(reply)
    assert echoed[f"{DL}/data"] == "opaque-42"

    posted = requests.post(platform.deep_linking_return_url, data={"JWT": reply}, timeout=5)
    assert posted.status_code == 200
    assert platform.deep_linking_responses[-1].content_items == [item]
    forged = requests.post(
        platform.deep_linking_return_url,
        data={"JWT": tool_jwt({f"{LTI}/message_type": "x"}, key_name="not-the-tool")},
        timeout=5,
    )
    assert forged.status_code == 400
    assert platform.deep_linking_responses[-1].error


def test_deep_linking_settings_need_a_deep_linking_login(platform: Platform) -> None:
    login = platform.login_params(LaunchUser.learner())
    with pytest.raises(ValueError, match="LtiDeepLinkingRequest"):
        platform.id_token_for(auth_request(login), deep_linking_settings={"data": "x"})


def test_course_page_embeds_the_tool_login_in_an_iframe(platform: Platform) -> None:
    user = LaunchUser.learner("ada")
    url = platform.course_page_url(user, course="DATAide M1", lti_storage_target="_parent")
    response = requests.get(url, timeout=5)
    assert response.status_code == 200
    page = parse_html(response.text)
    assert page.tags["html"]["lang"] == "en"
    # The iframe navigates tool login -> platform /auth -> tool launch: both origins allowed.
    csp = response.headers["Content-Security-Policy"]
    assert f"frame-src 'self' {TOOL_BASE_URL};" in csp
    assert {"main", "h1", "title"} <= set(page.tags)
    iframe = page.tags["iframe"]
    assert iframe["title"] == "DATAide"
    assert iframe["allow"]
    src = str(iframe["src"])
    assert src.startswith(f"{TOOL_BASE_URL}/lti/login?")
    login = dict(parse_qsl(urlsplit(src).query))
    assert login["login_hint"] == "ada"
    assert login["lti_storage_target"] == "_parent"
    # The iframe's login is a real, remembered login.
    assert platform.id_token_for(auth_request(login))["id_token"]
    missing = requests.get(f"{platform.base_url}/course/unknown?user=ada", timeout=5)
    assert missing.status_code == 404


def test_loopback_server_reports_handler_errors() -> None:
    def broken(_request: Request) -> Response:
        raise RuntimeError("boom")

    server = LoopbackServer(broken)
    server.start()
    try:
        response = requests.get(f"http://127.0.0.1:{server.port}/", timeout=5)
        assert (response.status_code, response.text) == (500, "RuntimeError: boom")
    finally:
        server.stop()
        server.stop()
