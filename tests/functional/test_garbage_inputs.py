"""Whatever a platform or an attacker sends to the public endpoints, the answer is a
clear 4xx (or the normal redirect), never a 500."""

from __future__ import annotations

import base64
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.functional.conftest import Lms
from tests.functional.platform import LaunchUser

text = st.text(max_size=200)
LOGIN_KEYS = [
    "iss",
    "login_hint",
    "target_link_uri",
    "lti_message_hint",
    "client_id",
    "lti_deployment_id",
    "lti_storage_target",
]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(params=st.dictionaries(st.sampled_from(LOGIN_KEYS), text, max_size=7), post=st.booleans())
def test_login_never_fails_with_a_server_error(
    lms: Lms, params: dict[str, str], post: bool
) -> None:
    response = (
        lms.client.post("/lti/login", data=params)
        if post
        else lms.client.get("/lti/login", query_string=params)
    )
    assert response.status_code in (200, 302, 400, 403, 429), response.status_code


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(header=json_values, body=json_values, signature=st.binary(max_size=64))
def test_launch_with_any_token_shape_is_a_4xx(
    lms: Lms, header: object, body: object, signature: bytes
) -> None:
    auth = lms.login(LaunchUser.learner())
    token = ".".join(
        [_b64(json.dumps(header).encode()), _b64(json.dumps(body).encode()), _b64(signature)]
    )
    response = lms.post_launch({"id_token": token, "state": auth["state"]})
    assert 400 <= response.status_code < 500, response.status_code


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(claims=st.dictionaries(st.text(max_size=60), json_values, max_size=6))
def test_signed_tokens_with_odd_claims_are_a_4xx(lms: Lms, claims: dict[str, object]) -> None:
    """Validly signed by the platform, but with any claims merged in."""
    auth = lms.login(LaunchUser.learner())
    token = lms.platform.id_token_for(auth, overrides=claims) if claims else None
    if token is None:
        return
    response = lms.post_launch(token)
    assert response.status_code < 500, response.get_data(as_text=True)[-500:]
