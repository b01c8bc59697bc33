"""The tool in an LMS iframe, in Debian's Chromium: a learner launch reaches the landing page.

The LMS is the Open edX-backed platform harness on http://127.0.0.1:<port>; the tool is the
real application (SQLite) on http://localhost:<port>: two sites, so the whole OIDC chain (tool
login -> platform /auth -> tool launch) runs in a third-party iframe.

* Third-party cookies blocked (Chrome's coming default): the tool's ``Partitioned`` state
  cookie carries the launch.
* Every cookie of the tool refused (a stricter profile setting): with the platform's
  postMessage storage (``lti_storage_target=_parent``) the launch still succeeds; without it
  the tool offers to open in a new window.

axe-core checks every page the learner reaches for WCAG 2.1 A/AA violations.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from playwright.sync_api import Page, Request

from tests.functional.platform import LaunchUser

from . import harness
from .embedding import (
    WAIT_S,
    Embedded,
    describe,
    serve_embedded,
    snapshot,
    wait_for_tool_page,
)
from .harness import AssertNoAxeViolations, BrowserContextFactory

LEARNER_NAME = "Émilie Tremblay"

# fr-CA strings, from lti_tool/translations/fr_CA/LC_MESSAGES/messages.po.
FR_WELCOME = "Bienvenue"  # msgid "Welcome, %(name)s" -> "Bienvenue, %(name)s"
FR_LEARNER = "Personne apprenante"  # msgid "Learner"
FR_ROLE = "Votre rôle dans DATAide"  # msgid "Your role in DATAide"
FR_NOT_REGISTERED = "Plateforme non enregistrée"  # msgid "Platform not registered"
FR_BLOCKED = "Votre navigateur a bloqué le lancement"  # msgid "Your browser blocked the launch"
FR_NEW_WINDOW = "Ouvrir DATAide dans une nouvelle fenêtre"  # "Open DATAide in a new window"


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Embedded]:
    """The tool on http://localhost:<port>, registered with a platform on 127.0.0.1."""
    with serve_embedded(tmp_path) as served:
        yield served


@pytest.fixture
def block_all_cookies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Profiles started from now on refuse every cookie (Chrome's "Block all cookies")."""
    write_preferences = harness.write_profile_preferences

    def write(user_data_dir: Path, third_party_cookies: harness.ThirdPartyCookies) -> None:
        write_preferences(user_data_dir, third_party_cookies)
        path = user_data_dir / "Default" / "Preferences"
        preferences = json.loads(path.read_text(encoding="utf-8"))
        preferences["profile"]["default_content_setting_values"] = {"cookies": 2}
        path.write_text(json.dumps(preferences), encoding="utf-8")

    monkeypatch.setattr(harness, "write_profile_preferences", write)


def tool_requests(page: Page, tool_url: str) -> list[Request]:
    """Start recording the requests the page (and its iframe) sends to the tool."""
    seen: list[Request] = []
    page.on("request", lambda r: seen.append(r) if r.url.startswith(tool_url + "/") else None)
    return seen


def set_cookie_of(seen: list[Request], path: str) -> str:
    """The Set-Cookie header of the one recorded request to ``path``."""
    matching = [r for r in seen if urlsplit(r.url).path == path]
    assert len(matching) == 1, [r.url for r in seen]
    response = matching[0].response()
    assert response is not None, f"no response to {matching[0].url}"
    return response.all_headers().get("set-cookie", "")


def launch_posts(seen: list[Request], tool_url: str) -> list[dict[str, str]]:
    return [
        dict(parse_qsl(r.post_data or "", keep_blank_values=True))
        for r in seen
        if r.method == "POST" and r.url == f"{tool_url}/lti/launch"
    ]


def test_learner_launch_in_a_cross_site_iframe_with_third_party_cookies_blocked(
    embedded: Embedded,
    browser_context: BrowserContextFactory,
    assert_no_axe_violations: AssertNoAxeViolations,
) -> None:
    platform, tool_url = embedded.platform, embedded.tool_url
    context = browser_context(third_party_cookies="block", locale="fr-CA")
    context.set_default_timeout(WAIT_S * 1000)
    page = context.pages[0]
    seen = tool_requests(page, tool_url)
    learner = LaunchUser.learner("emilie", locale="fr-CA", name=LEARNER_NAME)

    page.goto(platform.course_page_url(learner))
    frame = wait_for_tool_page(page, f"{tool_url}/lti/launch", FR_WELCOME, "fr-CA landing")
    shown = snapshot(frame)
    assert shown["lang"] == "fr-CA", describe(frame, shown)
    assert shown["h1"] == f"{FR_WELCOME}, {LEARNER_NAME}", describe(frame, shown)
    assert FR_ROLE in shown["text"] and FR_LEARNER in shown["text"], describe(frame, shown)
    # The Partitioned state cookie set at login came back with the one launch POST.
    assert set_cookie_of(seen, "/lti/login").count("Partitioned") == 1
    launches = [r for r in seen if r.method == "POST" and r.url == f"{tool_url}/lti/launch"]
    assert len(launches) == 1, [r.url for r in seen]
    state = dict(parse_qsl(launches[0].post_data or ""))["state"]
    assert f"lti1p3-{state}={state}" in launches[0].all_headers().get("cookie", "")
    assert_no_axe_violations(frame, "landing fr-CA")

    frame.get_by_role("button", name="English").click()
    frame = wait_for_tool_page(page, f"{tool_url}/lti/locale", "Welcome", "English landing")
    shown = snapshot(frame)
    assert shown["lang"] == "en", describe(frame, shown)
    assert shown["h1"] == f"Welcome, {LEARNER_NAME}", describe(frame, shown)
    assert "Learner" in shown["text"] and FR_LEARNER not in shown["text"], describe(frame, shown)
    assert_no_axe_violations(frame, "landing en (after the language switch)")

    # The iframe of a platform configured with the wrong client id: the tool's error page.
    params = {**platform.login_params(learner), "client_id": "not-registered"}
    frame.goto(f"{tool_url}/lti/login?{urlencode(params)}")
    frame = wait_for_tool_page(page, f"{tool_url}/lti/login", FR_NOT_REGISTERED, "error page")
    shown = snapshot(frame)
    assert shown["lang"] == "fr-CA", describe(frame, shown)
    assert "unknown_registration" in shown["text"], describe(frame, shown)
    assert_no_axe_violations(frame, "error page fr-CA (unknown_registration) in the iframe")

    home = context.new_page()
    response = home.goto(f"{tool_url}/")
    assert response is not None and response.status == 200
    assert home.evaluate("() => document.documentElement.lang") == "fr-CA"
    assert_no_axe_violations(home, "home page fr-CA (top level)")


def test_launch_through_platform_storage_when_every_cookie_is_refused(
    embedded: Embedded,
    block_all_cookies: None,
    browser_context: BrowserContextFactory,
    assert_no_axe_violations: AssertNoAxeViolations,
) -> None:
    platform, tool_url = embedded.platform, embedded.tool_url
    context = browser_context(third_party_cookies="block", locale="fr-CA")
    context.set_default_timeout(WAIT_S * 1000)
    page = context.pages[0]
    seen = tool_requests(page, tool_url)
    learner = LaunchUser.learner("storage-learner", locale="fr-CA", name=LEARNER_NAME)

    page.goto(platform.course_page_url(learner, platform_storage=True))
    frame = wait_for_tool_page(page, f"{tool_url}/lti/launch", FR_WELCOME, "storage landing")
    shown = snapshot(frame)
    assert shown["h1"] == f"{FR_WELCOME}, {LEARNER_NAME}", describe(frame, shown)
    assert FR_LEARNER in shown["text"], describe(frame, shown)

    # The tool set its state cookie at login and the browser never sent it back: the first
    # launch POST got the storage page, the second carried the secret read from the LMS.
    assert "lti1p3-" in set_cookie_of(seen, "/lti/login")
    posts = launch_posts(seen, tool_url)
    assert [sorted(p) for p in posts] == [
        ["id_token", "state"],
        ["id_token", "lti_storage_secret", "state"],
    ], posts
    assert posts[1]["lti_storage_secret"], posts
    assert posts[0]["state"] == posts[1]["state"]
    for request in seen:
        assert "cookie" not in request.all_headers(), f"{request.url} sent a cookie"
    assert context.cookies() == []
    assert_no_axe_violations(frame, "landing fr-CA (platform storage)")


def test_new_window_fallback_when_every_cookie_is_refused_and_no_platform_storage(
    embedded: Embedded,
    block_all_cookies: None,
    browser_context: BrowserContextFactory,
    assert_no_axe_violations: AssertNoAxeViolations,
) -> None:
    platform, tool_url = embedded.platform, embedded.tool_url
    context = browser_context(third_party_cookies="block", locale="fr-CA")
    context.set_default_timeout(WAIT_S * 1000)
    page = context.pages[0]
    seen = tool_requests(page, tool_url)
    learner = LaunchUser.learner("blocked-learner", locale="fr-CA", name=LEARNER_NAME)

    page.goto(platform.course_page_url(learner))
    frame = wait_for_tool_page(page, f"{tool_url}/lti/launch", FR_BLOCKED, "fallback page")
    shown = snapshot(frame)
    assert shown["lang"] == "fr-CA", describe(frame, shown)
    link = frame.get_by_role("link", name=FR_NEW_WINDOW)
    assert link.get_attribute("target") == "_blank", describe(frame, shown)
    href = link.get_attribute("href") or ""
    assert href.startswith(f"{tool_url}/lti/login?"), href
    restart = dict(parse_qsl(urlsplit(href).query))
    assert restart["lti1p3_new_window"] == "1" and restart["login_hint"] == learner.sub, href
    assert [sorted(p) for p in launch_posts(seen, tool_url)] == [["id_token", "state"]]
    assert_no_axe_violations(frame, "cookies blocked fallback fr-CA")
