"""Proves the harness behaves like a real embedded LTI launch needs.

Two tiny Flask apps stand in for the real ones: an "LMS" on http://localhost embeds a "tool" on
http://127.0.0.1 in an iframe. Different hosts are different sites to the browser, so the tool
runs in a third-party (cross-site) context exactly as in a real LMS.

Observed with Debian's Chromium 156:
- http://localhost and http://127.0.0.1 are potentially trustworthy origins, so ``Secure``
  cookies (and so ``SameSite=None`` and ``Partitioned`` ones) are accepted over plain HTTP.
- ``SameSite=None`` without ``Secure`` is rejected even when third-party cookies are allowed.
- With third-party cookies blocked, a plain ``SameSite=None; Secure`` cookie set by the iframe
  is dropped; a ``Partitioned`` one is stored under the LMS's site and sent back inside the
  iframe only, never to the tool's own top-level pages.
- localStorage in the iframe works in both modes and is partitioned by top-level site.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlencode

import pytest
from flask import Flask, Response, request
from playwright.sync_api import BrowserContext, Frame

from .harness import (
    PLAYWRIGHT_DISABLED_FEATURES,
    AssertNoAxeViolations,
    BrowserContextFactory,
    RunAxe,
    check_disabled_features,
    serve_wsgi,
)

pytestmark = pytest.mark.browser

PLAIN = "plain_cookie"
PARTITIONED = "partitioned_cookie"
NOT_SECURE = "not_secure_cookie"

CLEAN_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Clean tool page</title></head>
<body><main><h1>Assignment</h1><p>Nothing wrong here.</p></main></body>
</html>"""

BROKEN_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Broken tool page</title></head>
<body><main><h1>Assignment</h1><img src="/diagram.png"></main></body>
</html>"""

LOCAL_STORAGE_ROUND_TRIP = """() => {
    try {
        localStorage.setItem("harness", "stored");
        return localStorage.getItem("harness");
    } catch (error) {
        return `${error.name}: ${error.message}`;
    }
}"""


def make_tool_app() -> Flask:
    tool = Flask("fake_tool")

    @tool.get("/set-cookies")
    def set_cookies() -> Response:
        response = Response(CLEAN_PAGE, mimetype="text/html")
        response.headers.add("Set-Cookie", f"{PLAIN}=1; Path=/; SameSite=None; Secure")
        response.headers.add(
            "Set-Cookie", f"{PARTITIONED}=1; Path=/; SameSite=None; Secure; Partitioned"
        )
        response.headers.add("Set-Cookie", f"{NOT_SECURE}=1; Path=/; SameSite=None")
        return response

    @tool.get("/cookies")
    def cookies() -> Response:
        return Response(json.dumps(dict(request.cookies)), mimetype="application/json")

    @tool.get("/clean")
    def clean() -> Response:
        return Response(CLEAN_PAGE, mimetype="text/html")

    @tool.get("/broken")
    def broken() -> Response:
        return Response(BROKEN_PAGE, mimetype="text/html")

    return tool


def make_lms_app() -> Flask:
    lms = Flask("fake_lms")

    @lms.get("/course")
    def course() -> Response:
        # The iframe's address comes from the query string: the tool's port is only known once
        # its server runs.
        src = request.args["tool"]
        page = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Course</title>'
            f'</head><body><main><h1>Course</h1><iframe title="Tool" src="{src}"></iframe>'
            "</main></body></html>"
        )
        return Response(page, mimetype="text/html")

    return lms


@dataclass(frozen=True)
class Sites:
    lms_url: str
    tool_url: str

    def course_url(self, tool_path: str) -> str:
        return f"{self.lms_url}/course?" + urlencode({"tool": self.tool_url + tool_path})


@pytest.fixture(scope="module")
def sites() -> Iterator[Sites]:
    with (
        serve_wsgi(make_lms_app(), "localhost") as lms_url,
        serve_wsgi(make_tool_app(), "127.0.0.1") as tool_url,
    ):
        yield Sites(lms_url, tool_url)


def open_embedded_tool(context: BrowserContext, sites: Sites, tool_path: str) -> Frame:
    """Open the LMS course page in the context's first tab; return the tool's (loaded) iframe."""
    page = context.pages[0]
    page.goto(sites.course_url(tool_path))
    handle = page.locator("iframe").element_handle()
    frame = handle.content_frame() if handle else None
    assert frame is not None, "the course page has no tool iframe"
    assert frame.url.startswith(sites.tool_url), frame.url
    return frame


def cookies_seen_by_tool(frame: Frame, sites: Sites) -> dict[str, str]:
    """Navigate the iframe again and return the cookies the tool's server received."""
    frame.goto(f"{sites.tool_url}/cookies")
    received: dict[str, str] = json.loads(frame.evaluate("() => document.body.innerText"))
    return received


def test_every_test_here_has_the_browser_marker(request: pytest.FixtureRequest) -> None:
    assert request.node.get_closest_marker("browser") is not None


def test_sites_are_cross_site(sites: Sites) -> None:
    assert sites.lms_url.startswith("http://localhost:")
    assert sites.tool_url.startswith("http://127.0.0.1:")


def test_blocked_third_party_cookies_keep_only_the_partitioned_cookie(
    browser_context: BrowserContextFactory, sites: Sites
) -> None:
    context = browser_context(third_party_cookies="block")
    frame = open_embedded_tool(context, sites, "/set-cookies")

    assert cookies_seen_by_tool(frame, sites) == {PARTITIONED: "1"}

    # The partitioned cookie belongs to the LMS's site: the tool's own top-level page (a new
    # tab on http://127.0.0.1) does not get it.
    top_level = context.new_page()
    top_level.goto(f"{sites.tool_url}/cookies")
    assert json.loads(top_level.evaluate("() => document.body.innerText")) == {}
    stored = {cookie["name"]: cookie.get("partitionKey") for cookie in context.cookies()}
    assert stored == {PARTITIONED: "http://localhost"}


def test_allowed_third_party_cookies_send_the_plain_cookie(
    browser_context: BrowserContextFactory, sites: Sites
) -> None:
    context = browser_context(third_party_cookies="allow")
    frame = open_embedded_tool(context, sites, "/set-cookies")

    # The plain cookie is Secure and yet was set over http://127.0.0.1: Chromium treats loopback
    # as potentially trustworthy. SameSite=None without Secure is always rejected.
    assert cookies_seen_by_tool(frame, sites) == {PLAIN: "1", PARTITIONED: "1"}


def test_local_storage_works_in_a_blocked_iframe(
    browser_context: BrowserContextFactory, sites: Sites
) -> None:
    context = browser_context(third_party_cookies="block")
    frame = open_embedded_tool(context, sites, "/clean")

    # Playwright's default flags turn storage partitioning off, which makes this a SecurityError
    # that real Chrome users never get.
    assert frame.evaluate(LOCAL_STORAGE_ROUND_TRIP) == "stored"

    # Partitioned like in real Chrome: the tool's top-level origin has its own, empty storage.
    top_level = context.new_page()
    top_level.goto(f"{sites.tool_url}/clean")
    assert top_level.evaluate("() => localStorage.getItem('harness')") is None


def test_playwright_default_features_are_refused() -> None:
    default_arg = "--disable-features=" + ",".join(PLAYWRIGHT_DISABLED_FEATURES)
    with pytest.raises(RuntimeError, match="ThirdPartyStoragePartitioning"):
        check_disabled_features(["chromium", default_arg])
    # Two --disable-features: the harness's list no longer matches Playwright's default.
    with pytest.raises(RuntimeError, match="PLAYWRIGHT_DISABLED_FEATURES"):
        check_disabled_features(["chromium", "--disable-features=A", "--disable-features=B"])
    check_disabled_features(["chromium", "--disable-features=PaintHolding"])


def test_run_axe_reports_an_image_without_alt_in_the_tool_frame(
    browser_context: BrowserContextFactory,
    sites: Sites,
    run_axe: RunAxe,
) -> None:
    context = browser_context()
    frame = open_embedded_tool(context, sites, "/broken")

    violations = run_axe(frame)

    assert [violation["id"] for violation in violations] == ["image-alt"]
    assert violations[0]["nodes"] == ["img"]
    assert violations[0]["impact"] == "critical"


def test_run_axe_finds_nothing_on_a_clean_page(
    browser_context: BrowserContextFactory,
    sites: Sites,
    run_axe: RunAxe,
    assert_no_axe_violations: AssertNoAxeViolations,
) -> None:
    context = browser_context()
    frame = open_embedded_tool(context, sites, "/clean")

    assert run_axe(frame) == []
    assert_no_axe_violations(frame, "clean tool page")
    # The LMS page itself, which holds a cross-origin iframe without axe in it.
    assert_no_axe_violations(frame.page, "course page")


def test_assert_no_axe_violations_explains_the_failure(
    browser_context: BrowserContextFactory,
    sites: Sites,
    assert_no_axe_violations: AssertNoAxeViolations,
) -> None:
    context = browser_context()
    frame = open_embedded_tool(context, sites, "/broken")

    with pytest.raises(pytest.fail.Exception) as failure:
        assert_no_axe_violations(frame, "broken tool page")

    message = str(failure.value)
    assert "1 axe violation(s) in broken tool page" in message
    assert "image-alt (critical): Images must have alternative text" in message
    assert "at img" in message
