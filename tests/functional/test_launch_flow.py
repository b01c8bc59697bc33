"""Launch flow beyond the token: state and cookies, deployments, keys, locale, tokens."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from lti_tool.db import get_db
from lti_tool.models import Deployment, Organization, User
from lti_tool.services.coordinators import add_coordinator
from lti_tool.services.platforms import approve_deployment
from tests.conftest import build_app, make_settings
from tests.functional.conftest import Lms, page_code, register
from tests.functional.platform import LaunchUser, Platform


def test_missing_and_unknown_state(lms: Lms) -> None:
    auth = lms.login(LaunchUser.learner())
    token = lms.platform.id_token_for(auth)
    assert page_code(lms.post_launch({"id_token": token["id_token"]})) == "missing_state"
    unknown = lms.post_launch({"id_token": token["id_token"], "state": "state-forged"})
    assert unknown.status_code == 400 and page_code(unknown) == "unknown_state"
    assert lms.post_launch(token).status_code == 200


def test_replayed_launch_is_refused(lms: Lms) -> None:
    token = lms.platform.id_token_for(lms.login(LaunchUser.learner()))
    assert lms.post_launch(token).status_code == 200
    replay = lms.post_launch(token)
    assert replay.status_code == 409 and page_code(replay) == "launch_replayed"


def test_launch_in_another_browser_is_refused(lms: Lms, app: Flask) -> None:
    token = lms.platform.id_token_for(lms.login(LaunchUser.learner()))
    other_browser = app.test_client()
    blocked = other_browser.post("/lti/launch", data=token)
    # No state cookie and no platform storage: the new-window fallback is offered.
    assert blocked.status_code == 403 and page_code(blocked) is None
    html = blocked.get_data(as_text=True)
    assert "lti1p3_new_window=1" in html and 'target="_blank"' in html
    # A cookie that does not match the state is refused outright.
    other_browser.set_cookie("lti1p3-" + token["state"], "state-other", path="/lti")
    assert page_code(other_browser.post("/lti/launch", data=token)) == "state_mismatch"
    # The rightful browser still launches.
    assert lms.post_launch(token).status_code == 200


def test_state_cookie_attributes(lms: Lms) -> None:
    params = lms.platform.login_params(LaunchUser.learner())
    response = lms.client.get("/lti/login", query_string=params)
    cookie = response.headers["Set-Cookie"]
    for attribute in ("Secure", "HttpOnly", "SameSite=None", "Partitioned", "Path=/lti"):
        assert attribute in cookie


def test_platform_storage_flow(lms: Lms, app: Flask) -> None:
    """Without cookies, the state is bound through the platform's postMessage storage."""
    params = lms.platform.login_params(LaunchUser.learner(), lti_storage_target="_parent")
    login = lms.client.get("/lti/login", query_string=params)
    assert login.status_code == 200
    html = login.get_data(as_text=True)
    assert 'data-mode="put"' in html and 'data-target="_parent"' in html
    secret = html.split('data-value="')[1].split('"')[0]
    auth_url = html.split('data-next="')[1].split('"')[0].replace("&amp;", "&")
    from urllib.parse import parse_qs, urlsplit

    auth = {k: v[0] for k, v in parse_qs(urlsplit(auth_url).query).items()}
    token = lms.platform.id_token_for(auth)
    cookieless = app.test_client()
    page = cookieless.post("/lti/launch", data=token)
    assert page.status_code == 200 and 'data-mode="get"' in page.get_data(as_text=True)
    wrong = cookieless.post("/lti/launch", data={**token, "lti_storage_secret": "guess"})
    assert page_code(wrong) == "state_mismatch"
    ok = cookieless.post("/lti/launch", data={**token, "lti_storage_secret": secret})
    assert ok.status_code == 200 and "launch_token" in ok.get_data(as_text=True)


def test_unknown_deployment_waits_for_approval(app: Flask, platform: Platform) -> None:
    register(app, platform, deployment_ids=())
    lms = Lms(app=app, platform=platform, client=app.test_client())
    for _ in range(2):
        pending = lms.launch(LaunchUser.learner())
        assert pending.status_code == 403 and page_code(pending) == "deployment_pending"
    with get_db(app).session() as session:
        deployments = session.scalars(select(Deployment)).all()
        assert [(d.deployment_id, d.status) for d in deployments] == [("1", "pending")]
        assert session.scalars(select(User)).first() is None
        approve_deployment(session, platform.issuer, "1")
    assert lms.launch(LaunchUser.learner()).status_code == 200


def test_unregistered_client_id_at_login(lms: Lms) -> None:
    params = {**lms.platform.login_params(LaunchUser.learner()), "client_id": "someone-else"}
    refused = lms.client.get("/lti/login", query_string=params)
    assert refused.status_code == 400 and page_code(refused) == "unknown_registration"


@pytest.mark.parametrize(
    ("drop", "code"), [("iss", "login_missing_iss"), ("login_hint", "login_missing_login_hint")]
)
def test_incomplete_login(lms: Lms, drop: str, code: str) -> None:
    params = lms.platform.login_params(LaunchUser.learner())
    params.pop(drop)
    assert page_code(lms.client.get("/lti/login", query_string=params)) == code


def test_login_target_must_be_this_tool(lms: Lms) -> None:
    params = {
        **lms.platform.login_params(LaunchUser.learner()),
        "target_link_uri": "https://evil.example.org/phish",
    }
    assert page_code(lms.client.post("/lti/login", data=params)) == "login_bad_target"


def test_platform_key_rotation_refetches_jwks_once(lms: Lms) -> None:
    assert lms.launch(LaunchUser.learner()).status_code == 200
    assert lms.launch(LaunchUser.learner()).status_code == 200
    assert lms.platform.jwks_requests == 1  # parsed keys cached
    lms.platform.rotate_key()
    assert lms.launch(LaunchUser.learner()).status_code == 200  # unknown kid -> refetch
    assert lms.platform.jwks_requests == 2


def test_unknown_kid_does_not_hammer_the_platform(lms: Lms) -> None:
    for _ in range(3):
        auth = lms.login(LaunchUser.learner())
        token = lms.platform.id_token_for(auth, header_overrides={"kid": "bogus"})
        assert page_code(lms.post_launch(token)) == "unknown_kid"
    assert lms.platform.jwks_requests == 1


def test_platform_jwks_down_is_a_clear_502(lms: Lms) -> None:
    auth = lms.login(LaunchUser.learner())
    token = lms.platform.id_token_for(auth)
    lms.platform.stop()
    refused = lms.post_launch(token)
    assert refused.status_code == 502 and page_code(refused) == "platform_unreachable"


@pytest.mark.parametrize(
    ("claim_locale", "accept", "expected"),
    [
        ("fr-CA", "en", "fr-CA"),
        ("en-US", "fr", "en"),
        (None, "en-GB,en;q=0.9", "en"),
        (None, "es", "fr-CA"),
        ("de", None, "fr-CA"),
    ],
)
def test_locale_rules(
    lms: Lms, claim_locale: str | None, accept: str | None, expected: str
) -> None:
    headers = {"Accept-Language": accept} if accept else {}
    lms.client.environ_base.update({"HTTP_ACCEPT_LANGUAGE": accept or ""})
    user = LaunchUser.learner(locale=claim_locale)
    response = lms.launch(user)
    assert response.status_code == 200
    assert f'<html lang="{expected}">' in response.get_data(as_text=True)
    del headers


def test_error_pages_before_launch_follow_accept_language_only(lms: Lms) -> None:
    lms.client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    auth = lms.login(LaunchUser.learner(locale="fr-CA"))
    token = lms.platform.id_token_for(auth, remove=["sub"])
    refused = lms.post_launch(token)
    assert '<html lang="en">' in refused.get_data(as_text=True)


def _token(html: str) -> str:
    return html.split('name="launch_token" value="')[1].split('"')[0]


def test_language_switch_is_remembered(lms: Lms) -> None:
    first = lms.launch(LaunchUser.learner(sub="switcher", locale="fr-CA"))
    token = _token(first.get_data(as_text=True))
    switched = lms.client.post("/lti/locale", data={"launch_token": token, "locale": "en"})
    assert switched.status_code == 200
    assert '<html lang="en">' in switched.get_data(as_text=True)
    again = lms.launch(LaunchUser.learner(sub="switcher", locale="fr-CA"))
    assert '<html lang="en">' in again.get_data(as_text=True)


def test_in_frame_form_needs_a_valid_launch_token(lms: Lms, app: Flask) -> None:
    response = lms.launch(LaunchUser.learner())
    token = _token(response.get_data(as_text=True))
    missing = lms.client.post("/lti/locale", data={"locale": "en"})
    assert missing.status_code == 401 and page_code(missing) == "launch_token_missing"
    forged = lms.client.post("/lti/locale", data={"launch_token": token[:-2] + "xx"})
    assert page_code(forged) == "launch_token_invalid"
    # The token alone authenticates: no cookie needed (third-party cookies blocked).
    ok = app.test_client().post("/lti/locale", data={"launch_token": token, "locale": "en"})
    assert ok.status_code == 200
    assert _token(ok.get_data(as_text=True)) != ""


def test_expired_launch_token(tmp_path: Any, platform: Platform) -> None:
    app = build_app(make_settings(tmp_path, launch_token_seconds=60))
    register(app, platform)
    lms = Lms(app=app, platform=platform, client=app.test_client())
    token = _token(lms.launch(LaunchUser.learner()).get_data(as_text=True))
    store = app.extensions["dataide_store"]
    launch_id = app.extensions["dataide_lti"].tokens._serializer.loads(token)
    store.delete("launch:" + launch_id)
    expired = lms.client.post("/lti/locale", data={"launch_token": token, "locale": "en"})
    assert expired.status_code == 401 and page_code(expired) == "launch_token_expired"


def test_frame_ancestors_follow_the_registration(lms: Lms) -> None:
    response = lms.launch(LaunchUser.learner())
    csp = response.headers["Content-Security-Policy"]
    ancestors = csp.split("frame-ancestors", 1)[1]
    assert lms.platform.issuer in ancestors
    assert "script-src 'self' 'nonce-" in csp and "unsafe-inline" not in csp


def test_coordinator_role_comes_from_the_tool(lms: Lms, app: Flask) -> None:
    user = LaunchUser.learner(sub="coord-1")
    assert "Coordinator" not in lms.launch(user).get_data(as_text=True)
    with get_db(app).session() as session:
        add_coordinator(session, lms.platform.issuer, "coord-1")
    assert "<li>Coordinator</li>" in lms.launch(user).get_data(as_text=True)


def test_each_deployment_is_an_organization(lms: Lms, app: Flask) -> None:
    lms.launch(LaunchUser.learner(), custom={"dataide_org": "Centre Le Pivot"})
    lms.launch(LaunchUser.instructor())
    with get_db(app).session() as session:
        slugs = sorted(session.scalars(select(Organization.slug)).all())
    # Named by the custom parameter, scoped to the platform's host; one per deployment.
    assert slugs == ["127-0-0-1-centre-le-pivot"]


def test_login_is_rate_limited(tmp_path: Any, platform: Platform) -> None:
    app = build_app(make_settings(tmp_path, rate_limit_per_minute=3))
    register(app, platform)
    client = app.test_client()
    params = platform.login_params(LaunchUser.learner())
    statuses = [client.get("/lti/login", query_string=params).status_code for _ in range(5)]
    assert statuses == [302, 302, 302, 429, 429]


def test_one_user_across_client_ids_of_an_issuer(app: Flask, platform: Platform) -> None:
    """Open edX gives each block its own client id: still one person per (issuer, sub)."""
    register(app, platform)
    with Platform(
        tool_base_url=platform_tool_url(app), issuer=platform.issuer, client_id="block-2"
    ) as second:
        register(app, second)
        for p in (platform, second):
            lms = Lms(app=app, platform=p, client=app.test_client())
            assert lms.launch(LaunchUser.learner(sub="same-person")).status_code == 200
    with get_db(app).session() as session:
        assert len(session.scalars(select(User)).all()) == 1


def platform_tool_url(app: Flask) -> str:
    return str(app.extensions["dataide_settings"].base_url)
