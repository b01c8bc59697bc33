"""1EdTech LTI 1.3 certification cases, tool side, through Open edX's consumer code.

Known bad payloads: a real login first, then exactly one thing spoiled and the token
re-signed by the platform; the specific error is asserted, nothing is written, and an
unspoiled control token on the same login then succeeds (so the refusal consumed nothing).
"""

from __future__ import annotations

from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from lti_tool.lti import claims as c
from tests.functional.conftest import Lms, page_code
from tests.functional.platform import LaunchUser

ROLE = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
INST = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#"

BAD_PAYLOADS: list[tuple[str, dict[str, Any], str]] = [
    ("no kid in header", {"header_overrides": {"kid": None}}, "missing_kid"),
    (
        "kid not in platform JWKS",
        {"header_overrides": {"kid": "not-a-platform-kid"}},
        "unknown_kid",
    ),
    ("wrong LTI version", {"overrides": {c.VERSION: "11.3"}}, "wrong_version"),
    ("no LTI version claim", {"remove": [c.VERSION]}, "missing_version"),
    (
        "required fields missing",
        {"remove": [c.MESSAGE_TYPE, c.VERSION, c.ROLES]},
        "missing_version",
    ),
    ("invalid timestamps", {"overrides": {"iat": 11111, "exp": 22222}}, "token_expired"),
    ("no message_type", {"remove": [c.MESSAGE_TYPE]}, "missing_message_type"),
    ("no roles claim", {"remove": [c.ROLES]}, "missing_roles"),
    ("no deployment_id", {"remove": [c.DEPLOYMENT_ID]}, "missing_deployment_id"),
    ("no resource_link id", {"remove": [c.RESOURCE_LINK]}, "missing_resource_link_id"),
    ("no sub", {"remove": ["sub"]}, "missing_sub"),
    # Beyond the certification list: every other way a token can be wrong.
    (
        "unsupported message type",
        {"overrides": {c.MESSAGE_TYPE: "LtiStartProctoring"}},
        "unsupported_message_type",
    ),
    ("roles not a list", {"overrides": {c.ROLES: "Learner"}}, "invalid_roles"),
    ("context not an object", {"overrides": {c.CONTEXT: "course-1"}}, "invalid_claim"),
    ("wrong audience", {"overrides": {"aud": "another-tool"}}, "wrong_audience"),
    ("wrong issuer", {"overrides": {"iss": "https://evil.example.org"}}, "wrong_issuer"),
    ("nonce of another login", {"overrides": {"nonce": "another-nonce"}}, "bad_nonce"),
    ("no nonce", {"remove": ["nonce"]}, "missing_nonce"),
    ("no exp", {"remove": ["exp"]}, "invalid_timestamps"),
    ("no iat", {"remove": ["iat"]}, "invalid_timestamps"),
    ("issued far in the future", {"iat_offset": 3600}, "token_not_yet_valid"),
    ("HS256 header", {"header_overrides": {"alg": "HS256"}}, "bad_algorithm"),
    ("alg none", {"header_overrides": {"alg": "none"}}, "bad_algorithm"),
    (
        "several audiences, no azp",
        {"overrides": {"aud": ["x", "dataide-client"], "azp": None}},
        "wrong_audience",
    ),
]


def _spoil(lms: Lms, auth: dict[str, str], spec: dict[str, Any]) -> dict[str, str]:
    spec = dict(spec)
    if "iat_offset" in spec:
        control = lms.platform.id_token_for(auth)
        body = jwt.decode(control["id_token"], options={"verify_signature": False})
        offset = spec.pop("iat_offset")
        spec["overrides"] = {"iat": body["iat"] + offset, "exp": body["exp"] + offset}
    overrides = spec.get("overrides")
    if overrides and any(v is None for v in overrides.values()):
        spec["remove"] = [k for k, v in overrides.items() if v is None]
        spec["overrides"] = {k: v for k, v in overrides.items() if v is not None}
    return lms.platform.id_token_for(auth, **spec)


@pytest.mark.parametrize(("case", "spoil", "code"), BAD_PAYLOADS, ids=[b[0] for b in BAD_PAYLOADS])
def test_known_bad_payload_is_refused(
    lms: Lms, case: str, spoil: dict[str, Any], code: str
) -> None:
    user = LaunchUser.learner(sub="cert-learner")
    auth = lms.login(user)
    before = lms.counts()
    refused = lms.post_launch(_spoil(lms, auth, spoil))
    assert 400 <= refused.status_code < 500, case
    assert page_code(refused) == code
    assert "launch_token" not in refused.get_data(as_text=True)
    assert lms.counts() == before  # no user, context, link or deployment written
    control = lms.post_launch(lms.platform.id_token_for(auth))
    assert control.status_code == 200, page_code(control)
    assert "launch_token" in control.get_data(as_text=True)


@pytest.mark.parametrize(
    ("token", "code"),
    [("not-a-jwt", "invalid_jwt"), ("abc.def", "invalid_jwt"), ("", "missing_id_token")],
)
def test_token_that_is_not_a_jwt(lms: Lms, token: str, code: str) -> None:
    auth = lms.login(LaunchUser.learner())
    refused = lms.post_launch({"id_token": token, "state": auth["state"]})
    assert page_code(refused) == code and refused.status_code == 400


def test_jwt_that_is_not_an_lti_launch(lms: Lms) -> None:
    auth = lms.login(LaunchUser.learner())
    token = lms.platform.sign({"name": "badltilaunch"})
    refused = lms.post_launch({"id_token": token, "state": auth["state"]})
    assert refused.status_code == 400 and page_code(refused) == "missing_iss"


def test_signature_by_another_key_with_a_known_kid(lms: Lms) -> None:
    auth = lms.login(LaunchUser.learner())
    good = lms.platform.id_token_for(auth)
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    payload = jwt.decode(good["id_token"], options={"verify_signature": False})
    forged = jwt.encode(
        payload, other_key, algorithm="RS256", headers={"kid": lms.platform.current_kid}
    )
    refused = lms.post_launch({"id_token": forged, "state": good["state"]})
    assert page_code(refused) == "bad_signature"
    assert lms.post_launch(good).status_code == 200


def test_clock_skew_within_leeway_is_accepted(lms: Lms) -> None:
    auth = lms.login(LaunchUser.learner())
    ok = _spoil(lms, auth, {"iat_offset": 20})  # the test app allows 30 s
    assert lms.post_launch(ok).status_code == 200


# -- valid launches: teacher and student ----------------------------------------------

VALID = [
    ("full roles", {}, None),
    ("several roles", {c.ROLES: [ROLE + "Instructor", INST + "Staff", INST + "Other"]}, "mentor"),
    ("short role", {c.ROLES: ["Instructor"]}, "mentor"),
    ("unknown role", {c.ROLES: ["urn:lti:role:unknown"]}, "learner"),
    ("no role", {c.ROLES: [""]}, "learner"),
    ("empty roles", {c.ROLES: []}, "learner"),
]


@pytest.mark.parametrize("who", ["instructor", "learner"])
@pytest.mark.parametrize(("case", "overrides", "expected"), VALID, ids=[v[0] for v in VALID])
def test_valid_launch_roles(
    lms: Lms, who: str, case: str, overrides: dict[str, Any], expected: str | None
) -> None:
    user = LaunchUser.instructor() if who == "instructor" else LaunchUser.learner()
    response = lms.launch(user, overrides=overrides or None)
    assert response.status_code == 200, page_code(response)
    html = response.get_data(as_text=True)
    role = expected or ("mentor" if who == "instructor" else "learner")
    assert ("Mentor / editor" in html) is (role == "mentor")
    assert ("<li>Learner</li>" in html) is (role == "learner")


@pytest.mark.parametrize("who", ["instructor", "learner"])
@pytest.mark.parametrize(
    ("case", "fields", "context", "shows"),
    [
        ("only email", {"name": None, "given_name": None, "family_name": None}, True, "m@ex.org"),
        ("only names", {"email": None}, True, "Marie Tremblay"),
        (
            "no PII",
            {"name": None, "given_name": None, "family_name": None, "email": None},
            True,
            "Welcome</h1>",
        ),
        (
            "email, no context",
            {"name": None, "given_name": None, "family_name": None},
            False,
            "No course",
        ),
    ],
)
def test_valid_launch_pii_and_context(
    lms: Lms, who: str, case: str, fields: dict[str, Any], context: bool, shows: str
) -> None:
    base = {"name": "Marie Tremblay", "email": "m@ex.org", "locale": "en", **fields}
    user = (LaunchUser.instructor if who == "instructor" else LaunchUser.learner)(**base)
    kwargs: dict[str, Any] = {} if context else {"context": None}
    response = lms.launch(user, **kwargs)
    assert response.status_code == 200, page_code(response)
    assert shows in response.get_data(as_text=True)
