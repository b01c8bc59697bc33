"""Deep Linking responses and service tokens, verified by Open edX's consumer code."""

from __future__ import annotations

import pytest
from flask import Flask

from lti_tool.lti import claims as c
from tests.functional.conftest import Lms, page_code
from tests.functional.platform import LaunchUser

DL = "LtiDeepLinkingRequest"


def _token(html: str) -> str:
    return html.split('name="launch_token" value="')[1].split('"')[0]


def _dl_launch(lms: Lms, user: LaunchUser, data: str | None = "909708", multiple: bool = True):  # type: ignore[no-untyped-def]
    settings = {
        "accept_multiple": multiple,
        "accept_types": ["link", "file", "html", "ltiResourceLink"],
    }
    if data is not None:
        settings["data"] = data
    return lms.launch(user, login_kwargs={"message_type": DL}, deep_linking_settings=settings)


def test_mentor_deep_linking_response_is_verified_by_the_platform(lms: Lms) -> None:
    page = _dl_launch(lms, LaunchUser.instructor(locale="en"))
    assert page.status_code == 200, page_code(page)
    html = page.get_data(as_text=True)
    assert 'name="item" value="overview"' in html
    answer = lms.client.post(
        "/lti/deep-linking", data={"launch_token": _token(html), "item": "overview"}
    )
    assert answer.status_code == 200
    body = answer.get_data(as_text=True)
    return_url = body.split('action="')[1].split('"')[0]
    assert return_url == lms.platform.deep_linking_return_url
    # The platform may receive the form: the CSP allows posting to its origin.
    assert (
        lms.platform.base_url in answer.headers["Content-Security-Policy"].split("form-action")[1]
    )
    jwt_value = body.split('name="JWT" value="')[1].split('"')[0]
    items = lms.platform.decode_deep_linking_response(jwt_value)
    assert len(items) == 1
    assert items[0]["type"] == "ltiResourceLink"
    assert items[0]["url"] == "http://127.0.0.1:5999/lti/launch"
    assert set(items[0]["custom"]) == {"dataide_dl"}
    claims = lms.platform.deep_linking_response_claims(jwt_value)
    assert claims["https://purl.imsglobal.org/spec/lti-dl/claim/data"] == "909708"
    assert claims["aud"] in (lms.platform.issuer, [lms.platform.issuer])
    assert claims["iss"] == lms.platform.client_id
    assert claims[c.DEPLOYMENT_ID] == lms.platform.deployment_id


def test_no_data_claim_when_the_platform_sent_none(lms: Lms) -> None:
    html = _dl_launch(lms, LaunchUser.instructor(), data=None).get_data(as_text=True)
    body = lms.client.post(
        "/lti/deep-linking", data={"launch_token": _token(html), "item": "overview"}
    ).get_data(as_text=True)
    jwt_value = body.split('name="JWT" value="')[1].split('"')[0]
    claims = lms.platform.deep_linking_response_claims(jwt_value)
    assert "https://purl.imsglobal.org/spec/lti-dl/claim/data" not in claims


def test_learner_gets_a_refusal_and_no_response(lms: Lms) -> None:
    refused = _dl_launch(lms, LaunchUser.learner())
    assert refused.status_code == 403 and page_code(refused) == "forbidden"
    assert "launch_token" not in refused.get_data(as_text=True)
    assert lms.platform.deep_linking_responses == []


def test_learner_launch_token_cannot_answer_deep_linking(lms: Lms) -> None:
    html = lms.launch(LaunchUser.learner()).get_data(as_text=True)
    refused = lms.client.post(
        "/lti/deep-linking", data={"launch_token": _token(html), "item": "overview"}
    )
    assert refused.status_code == 403
    assert "JWT" not in refused.get_data(as_text=True)


def test_empty_selection_says_what_to_do(lms: Lms) -> None:
    html = _dl_launch(lms, LaunchUser.instructor(locale="en")).get_data(as_text=True)
    again = lms.client.post("/lti/deep-linking", data={"launch_token": _token(html)})
    assert again.status_code == 400
    assert "Choose at least one item" in again.get_data(as_text=True)
    assert 'role="alert"' in again.get_data(as_text=True)


@pytest.mark.parametrize("shape", ["no accept_types", "no ltiResourceLink"])
def test_platform_that_cannot_take_links(lms: Lms, shape: str) -> None:
    user = LaunchUser.instructor()
    auth = lms.login(user, message_type=DL)
    token = lms.platform.id_token_for(auth)
    import jwt

    body = jwt.decode(token["id_token"], options={"verify_signature": False})
    settings = dict(body[c.DEEP_LINKING_SETTINGS])
    if shape == "no accept_types":
        settings.pop("accept_types")
    else:
        settings["accept_types"] = ["link"]
    spoiled = lms.platform.id_token_for(auth, overrides={c.DEEP_LINKING_SETTINGS: settings})
    refused = lms.post_launch(spoiled)
    assert refused.status_code == 400 and page_code(refused) == "deep_linking_types"


def test_service_token_is_obtained_and_cached(lms: Lms, app: Flask) -> None:
    from lti_tool.db import get_db
    from lti_tool.models import Registration

    tool = app.extensions["dataide_lti"]
    with get_db(app).session() as session:
        reg_pk = session.query(Registration.id).scalar()
        first = tool.service_token(session, reg_pk, [c.SCOPE_SCORE, c.SCOPE_LINEITEM])
        again = tool.service_token(session, reg_pk, [c.SCOPE_LINEITEM, c.SCOPE_SCORE])
        assert first and first == again
        assert lms.platform.token_requests == 1  # same scopes, any order: cached
        other = tool.service_token(session, reg_pk, [c.SCOPE_NRPS])
        assert other and lms.platform.token_requests == 2


def test_service_token_refused_is_a_clear_error(lms: Lms, app: Flask) -> None:
    from lti_tool.db import get_db
    from lti_tool.lti import PlatformUnreachable
    from lti_tool.lti.keys import rotate_keys
    from lti_tool.models import Registration

    tool = app.extensions["dataide_lti"]
    with get_db(app).session() as session:
        # The platform knows only the old public key: assertions by a new key are refused.
        rotate_keys(session, app.extensions["dataide_settings"].key_encryption_key)
        session.commit()
        reg_pk = session.query(Registration.id).scalar()
        with pytest.raises(PlatformUnreachable, match="service_token_refused"):
            tool.service_token(session, reg_pk, [c.SCOPE_SCORE])
