"""Learner, mentor and error pages inside an LMS iframe, in Debian's Chromium.

The tool runs in a cross-site iframe of the platform harness's course page with third-party
cookies blocked (see ``embedding``). One server per module; each test uses its own resource
links, so the tests do not depend on each other.

* A learner completes a module with the keyboard only: Tab, Shift+Tab, arrows in a radio
  group, Space, Enter and typing; no click.
* axe-core (WCAG 2.1 A/AA) finds nothing in each state: the picker (and after a filter), the
  module page before any answer, after a wrong and a right answer, completed; the class view
  with a learner, the mentor's preview; a placed experiment; the session errors and the
  refusals.
* At a phone's width (375 px) the pages never scroll sideways (tables scroll in their region).
* The tool asks the course page to resize its iframe (``lti.frameResize`` with the height of
  the page, again when the page's height changes).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Frame, Page, ViewportSize

from lti_tool.lti.launch_token import LAUNCH_PREFIX
from tests.functional.platform import LaunchUser

from .embedding import WAIT_S, Embedded, mark_stale, serve_embedded, wait_for_tool_page
from .harness import AssertNoAxeViolations, BrowserContextFactory

MODULE = "m01-maturite"
MODULE_TITLE = "Taking stock: a digital maturity self-assessment"  # its English title
EXPERIMENT = "x01-autodiagnostic"
EXPERIMENT_TITLE = "Team self-assessment and three priorities"
DEEP_LINKING = "LtiDeepLinkingRequest"
DEEP_LINKING_SETTINGS = {"accept_multiple": True, "accept_types": ["ltiResourceLink"]}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 375, "height": 740}

# Installed before any script of the course page: records the tool's resize requests as an
# LMS listening for them would receive them.
_RECORD_FRAME_RESIZE_JS = """
if (window.top === window) {
    window.frameResizes = [];
    window.addEventListener("message", (event) => {
        const data = event.data;
        if (data && typeof data === "object" && data.subject === "lti.frameResize") {
            window.frameResizes.push({origin: event.origin, height: data.height});
        }
    });
}
"""

# The element that has the keyboard focus inside the frame, or null while the focus is in
# another document (the course page) or on no element.
_FOCUSED_JS = """() => {
    const element = document.activeElement;
    if (!document.hasFocus() || !element || element === document.body) { return null; }
    return {
        tag: element.tagName.toLowerCase(),
        id: element.id,
        name: element.getAttribute("name"),
        value: element.getAttribute("value"),
        type: element.getAttribute("type"),
        className: element.className,
        checked: element.checked === true,
        form: element.form ? element.form.id : "",
        text: (element.innerText || "").trim().slice(0, 80),
        description: (element.getAttribute("aria-describedby") || "").split(" ")
            .map((id) => document.getElementById(id))
            .map((node) => (node ? node.innerText.trim() : "")).join(" "),
    };
}"""

# The page's widths, and the elements that stick out on the right where their parent does
# not (what makes a page scroll sideways).
_OVERFLOW_JS = """() => {
    const limit = window.innerWidth + 0.5;
    const wide = [];
    for (const element of document.body.querySelectorAll("*")) {
        const right = element.getBoundingClientRect().right;
        const parent = element.parentElement.getBoundingClientRect().right;
        if (right > limit && parent <= limit) {
            wide.push(`${element.tagName.toLowerCase()}.${element.className}: ${right}`);
        }
    }
    return {
        scrollWidth: document.documentElement.scrollWidth,
        innerWidth: window.innerWidth,
        wide: wide.slice(0, 10),
    };
}"""

Focused = dict[str, Any]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def placement_keys() -> dict[str, str]:
    """The custom keys of a Deep Linking content item for the module, pinned to major 1."""
    return {"dataide_item": MODULE, "dataide_pin": "1", "dataide_dl": str(uuid.uuid4())}


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Embedded]:
    with serve_embedded(Path(tmp_path_factory.mktemp("learning-pages"))) as served:
        yield served


@pytest.fixture
def course_page(browser_context: BrowserContextFactory) -> Page:
    """A tab of a Chromium that blocks third-party cookies, recording lti.frameResize."""
    context = browser_context(third_party_cookies="block", locale="en", viewport=DESKTOP)
    context.set_default_timeout(WAIT_S * 1000)
    context.add_init_script(_RECORD_FRAME_RESIZE_JS)
    return context.pages[0]


# -- keyboard --------------------------------------------------------------------------------
def focused(frame: Frame) -> Focused | None:
    element: Focused | None = frame.evaluate(_FOCUSED_JS)
    return element


def tab_to(
    page: Page, frame: Frame, wanted: Callable[[Focused], bool], what: str, *, back: bool = False
) -> Focused:
    """Press Tab (Shift+Tab with ``back``) until the focused element of ``frame`` is wanted."""
    key = "Shift+Tab" if back else "Tab"
    path: list[str] = []
    for _ in range(80):
        page.keyboard.press(key)
        element = focused(frame)
        if element is not None and wanted(element):
            return element
        path.append("(outside the frame)" if element is None else _label(element))
    pytest.fail(f"{key} never reached {what}; went through: {path}", pytrace=False)


def _label(element: Focused) -> str:
    return (
        f"{element['tag']}#{element['id']}[{element['name']}={element['value']}] {element['text']}"
    )


def toc_button(section: str) -> Callable[[Focused], bool]:
    return lambda e: "link-button" in e["className"] and e["value"] == section


def element_id(wanted: str) -> Callable[[Focused], bool]:
    return lambda e: e["id"] == wanted


def choice_of(question: str) -> Callable[[Focused], bool]:
    return lambda e: e["tag"] == "input" and e["form"] == f"q-{question}"


def check_button(question: str) -> Callable[[Focused], bool]:
    return lambda e: e["tag"] == "button" and e["form"] == f"q-{question}"


def arrow_to(page: Page, frame: Frame, option_id: str) -> None:
    """Move through the focused radio group with the arrow keys until ``option_id`` is
    focused (which checks it)."""
    for _ in range(6):
        element = focused(frame)
        if element is not None and element["id"] == option_id:
            assert element["checked"], _label(element)
            return
        page.keyboard.press("ArrowDown")
    pytest.fail(f"the arrow keys never reached {option_id}", pytrace=False)


def press_and_wait(page: Page, frame: Frame, key: str, path: str, what: str) -> Frame:
    """Press ``key`` on the focused control, which posts a form; wait for the next page."""
    mark_stale(frame)
    page.keyboard.press(key)
    return wait_for_tool_page(page, path, MODULE_TITLE, what)


# -- page checks -----------------------------------------------------------------------------
def assert_fits_phone(
    page: Page, frame: Frame, label: str, check: Callable[[Frame], None] | None = None
) -> None:
    """At 375 px wide, the page in the frame does not scroll sideways; ``check`` runs then."""
    page.set_viewport_size(PHONE)
    try:
        page.wait_for_function("(width) => window.innerWidth === width", arg=PHONE["width"])
        widths: dict[str, Any] = {}
        for _ in range(20):  # the frame lays out again once the course page has
            widths = frame.evaluate(_OVERFLOW_JS)
            if widths["innerWidth"] < PHONE["width"]:
                break
            page.wait_for_timeout(50)
        assert widths["innerWidth"] < PHONE["width"], f"{label}: frame still {widths}"
        assert widths["scrollWidth"] <= widths["innerWidth"], (
            f"{label}: the page scrolls sideways at {PHONE['width']} px: {widths}"
        )
        if check is not None:
            check(frame)
    finally:
        page.set_viewport_size(DESKTOP)


def resize_requests(page: Page) -> list[dict[str, Any]]:
    requests: list[dict[str, Any]] = page.evaluate("() => window.frameResizes")
    return requests


def wait_for_resize_request(page: Page, frame: Frame, tool_url: str, label: str) -> int:
    """Wait until the course page got a resize request with the frame's current height."""
    height = 0
    requests: list[dict[str, Any]] = []
    for _ in range(int(WAIT_S * 10)):
        height = frame.evaluate("() => Math.ceil(document.documentElement.scrollHeight)")
        requests = resize_requests(page)
        if requests and requests[-1]["height"] == height:
            assert {r["origin"] for r in requests} == {tool_url}, requests
            return height
        page.wait_for_timeout(100)
    pytest.fail(f"{label}: no lti.frameResize with height {height}; got {requests}")


def status_of(frame: Frame, question: str) -> dict[str, Any]:
    shown: dict[str, Any] = frame.evaluate(
        """(id) => {
            const status = document.getElementById(`q-${id}-status`);
            const form = document.getElementById(`q-${id}`);
            return {
                text: status.innerText.trim(),
                className: status.className,
                feedback: [...form.querySelectorAll(".feedback")].map(
                    (f) => ({className: f.className, text: f.innerText.trim()})),
                focused: document.activeElement === status,
            };
        }""",
        question,
    )
    return shown


def progress_text(frame: Frame) -> str:
    text: str = frame.locator(".progress-panel").inner_text()
    return text


# -- tests -----------------------------------------------------------------------------------
def test_learner_completes_a_module_with_the_keyboard_only(
    embedded: Embedded, course_page: Page, assert_no_axe_violations: AssertNoAxeViolations
) -> None:
    page, tool_url = course_page, embedded.tool_url
    learner = LaunchUser.learner(unique("keyboard"), locale="en")
    page.goto(
        embedded.platform.course_page_url(
            learner, resource_link_id=unique("link"), auth_options={"custom": placement_keys()}
        )
    )
    frame = wait_for_tool_page(page, f"{tool_url}/lti/launch", MODULE_TITLE, "module page")
    assert "Questions answered right: 0 of 5 (4 needed to complete)" in progress_text(frame)
    desktop_height = wait_for_resize_request(page, frame, tool_url, "module page")
    assert_no_axe_violations(frame, "module page before answers")

    def taller_when_narrow(narrow: Frame) -> None:
        height = wait_for_resize_request(page, narrow, tool_url, "module page at 375 px")
        assert height > desktop_height, (height, desktop_height)

    assert_fits_phone(page, frame, "module page before answers", taller_when_narrow)

    # The first section: q1 answered wrong (the first choice), then right.
    first = tab_to(page, frame, choice_of("q1"), "the choices of q1")
    assert first["id"] == "q-q1-a" and not first["checked"], first
    page.keyboard.press("Space")
    assert focused(frame) == {**first, "checked": True}
    tab_to(page, frame, check_button("q1"), "the Check button of q1")
    frame = press_and_wait(page, frame, "Enter", f"{tool_url}/learn/answer", "q1 wrong")
    shown = status_of(frame, "q1")
    assert shown["text"] == "Not quite: read the feedback, then try again.", shown
    assert "is-incorrect" in shown["className"] and shown["focused"], shown
    assert [f["className"] for f in shown["feedback"]] == ["feedback is-incorrect"], shown
    assert shown["feedback"][0]["text"].startswith("Not this one."), shown
    assert_no_axe_violations(frame, "module page after a wrong answer")
    assert_fits_phone(page, frame, "module page after a wrong answer")

    # From the result, back to the choices (the checked one has the focus), then the right one.
    back = tab_to(page, frame, choice_of("q1"), "the choices of q1", back=True)
    assert back["id"] == "q-q1-a" and back["checked"], back
    assert back["description"].startswith("Not this one."), back  # read with the choice
    arrow_to(page, frame, "q-q1-b")
    tab_to(page, frame, check_button("q1"), "the Check button of q1")
    frame = press_and_wait(page, frame, "Space", f"{tool_url}/learn/answer", "q1 right")
    shown = status_of(frame, "q1")
    assert shown["text"] == "Right answer." and "is-correct" in shown["className"], shown
    assert [f["className"] for f in shown["feedback"]] == ["feedback is-correct"], shown
    assert "Questions answered right: 1 of 5" in progress_text(frame)
    assert_no_axe_violations(frame, "module page after a right answer")

    # The section buttons, reached backwards from the result: q2 (true/false) is "false".
    tab_to(page, frame, toc_button("grille"), "the section button 'grille'", back=True)
    frame = press_and_wait(page, frame, "Enter", f"{tool_url}/learn/section", "section 2")
    assert frame.locator('[aria-current="step"]').get_attribute("value") == "grille"
    first = tab_to(page, frame, choice_of("q2"), "the choices of q2")
    assert first["id"] == "q-q2-true", first
    arrow_to(page, frame, "q-q2-false")
    tab_to(page, frame, check_button("q2"), "the Check button of q2")
    frame = press_and_wait(page, frame, "Enter", f"{tool_url}/learn/answer", "q2")
    assert status_of(frame, "q2")["text"] == "Right answer."

    # q3 (several answers): Space on each right one.
    tab_to(page, frame, toc_button("demarche"), "the section button 'demarche'", back=True)
    frame = press_and_wait(page, frame, "Enter", f"{tool_url}/learn/section", "section 3")
    for option in ("a", "b", "d"):
        tab_to(page, frame, element_id(f"q-q3-{option}"), f"choice {option} of q3")
        page.keyboard.press("Space")
    tab_to(page, frame, check_button("q3"), "the Check button of q3")
    frame = press_and_wait(page, frame, "Enter", f"{tool_url}/learn/answer", "q3")
    assert status_of(frame, "q3")["text"] == "Right answer."
    assert "Module completed." not in progress_text(frame)

    # q4 completes the module (4 of 5 needed); q5, typed, is right too.
    tab_to(page, frame, toc_button("priorites"), "the section button 'priorites'", back=True)
    frame = press_and_wait(page, frame, "Enter", f"{tool_url}/learn/section", "section 4")
    tab_to(page, frame, choice_of("q4"), "the choices of q4")
    arrow_to(page, frame, "q-q4-b")
    tab_to(page, frame, check_button("q4"), "the Check button of q4")
    frame = press_and_wait(page, frame, "Enter", f"{tool_url}/learn/answer", "q4")
    assert status_of(frame, "q4")["text"] == "Right answer."
    completed = frame.locator(".notice-success")
    assert completed.get_attribute("role") == "alert"
    assert completed.inner_text().startswith("Module completed. Well done!")
    assert_no_axe_violations(frame, "module page just completed")

    tab_to(page, frame, element_id("q-q5-answer"), "the answer field of q5")
    page.keyboard.type("three")
    frame = press_and_wait(page, frame, "Enter", f"{tool_url}/learn/answer", "q5")
    assert status_of(frame, "q5")["text"] == "Right answer."
    text = progress_text(frame)
    assert "Module completed." in text and "Questions answered right: 5 of 5" in text, text
    assert frame.locator(".notice-success").get_attribute("role") == "status"
    assert_no_axe_violations(frame, "module page completed")
    assert_fits_phone(page, frame, "module page completed")


def test_mentor_places_the_module_and_sees_the_class(
    embedded: Embedded, course_page: Page, assert_no_axe_violations: AssertNoAxeViolations
) -> None:
    page, tool_url, platform = course_page, embedded.tool_url, embedded.platform
    mentor = LaunchUser.instructor(unique("mentor"), locale="en")
    page.goto(
        platform.course_page_url(
            mentor,
            message_type=DEEP_LINKING,
            auth_options={"deep_linking_settings": DEEP_LINKING_SETTINGS},
        )
    )
    frame = wait_for_tool_page(page, f"{tool_url}/lti/launch", "Choose DATAide content", "picker")
    assert frame.get_by_role("status").inner_text() == "14 of 14 items shown."
    assert_no_axe_violations(frame, "picker")
    assert_fits_phone(page, frame, "picker")

    frame.get_by_label("Kind").select_option("module")
    frame.get_by_label("Search").fill("maturité")
    mark_stale(frame)
    frame.get_by_role("button", name="Filter").click()
    frame = wait_for_tool_page(
        page, f"{tool_url}/lti/deep-linking", "Choose DATAide content", "filtered picker"
    )
    assert frame.get_by_role("status").inner_text() == "1 of 14 items shown."
    assert_no_axe_violations(frame, "picker after a filter")

    # Placing the module sends the content item back to the platform, in the iframe.
    placed_before = len(platform.deep_linking_responses)
    frame.get_by_role("checkbox", name=MODULE_TITLE).check()
    frame.get_by_role("button", name="Add to the course").click()
    for _ in range(int(WAIT_S * 10)):
        if len(platform.deep_linking_responses) > placed_before:
            break
        page.wait_for_timeout(100)
    result = platform.deep_linking_responses[-1]
    assert result.error is None and result.content_items is not None, result
    (item,) = result.content_items
    custom = item["custom"]
    assert custom["dataide_item"] == MODULE and custom["dataide_pin"] == "1", custom

    # A learner opens it (no browser needed), then the mentor opens the same link.
    link = unique("link")
    learner = LaunchUser.learner(unique("learner"), name="Awa Diallo", locale="en")
    opened = embedded.lms().launch(learner, login_kwargs={"resource_link_id": link}, custom=custom)
    assert opened.status_code == 200
    page.goto(
        platform.course_page_url(mentor, resource_link_id=link, auth_options={"custom": custom})
    )
    frame = wait_for_tool_page(page, f"{tool_url}/lti/launch", MODULE_TITLE, "class view")
    rows = frame.locator(".class-table tbody tr")
    assert rows.count() == 1
    assert rows.first.locator("th").inner_text().startswith("Awa Diallo")
    assert "In progress" in rows.first.inner_text()
    assert_no_axe_violations(frame, "class view with one learner")

    def table_scrolls_in_its_region(narrow: Frame) -> None:
        region = narrow.locator(".table-scroll")
        sizes = region.evaluate("(r) => [r.scrollWidth, r.clientWidth]")
        assert sizes[0] > sizes[1], f"the table fits at 375 px? {sizes}"

    assert_fits_phone(page, frame, "class view", table_scrolls_in_its_region)

    mark_stale(frame)
    frame.get_by_role("button", name="View the content as a learner").click()
    frame = wait_for_tool_page(page, f"{tool_url}/learn/preview", MODULE_TITLE, "preview")
    assert "You are viewing this module as a mentor" in frame.locator(".learn").inner_text()
    assert_no_axe_violations(frame, "module page previewed by a mentor")


def test_learner_opens_a_placed_experiment(
    embedded: Embedded, course_page: Page, assert_no_axe_violations: AssertNoAxeViolations
) -> None:
    page, tool_url = course_page, embedded.tool_url
    learner = LaunchUser.learner(unique("experimenter"), locale="en")
    custom = {"dataide_item": EXPERIMENT, "dataide_dl": str(uuid.uuid4())}
    page.goto(
        embedded.platform.course_page_url(
            learner, resource_link_id=unique("link"), auth_options={"custom": custom}
        )
    )
    frame = wait_for_tool_page(page, f"{tool_url}/lti/launch", EXPERIMENT_TITLE, "experiment")
    assert frame.locator(".rubric-table").count() == 1
    assert_no_axe_violations(frame, "experiment page")
    assert_fits_phone(page, frame, "experiment page")


def read_error(frame: Frame) -> tuple[str, str]:
    """The error page's title and code."""
    return frame.locator("h1").inner_text(), frame.locator("code").inner_text()


def test_session_ends_and_refusals_get_accessible_pages(
    embedded: Embedded, course_page: Page, assert_no_axe_violations: AssertNoAxeViolations
) -> None:
    page, tool_url, platform = course_page, embedded.tool_url, embedded.platform
    learner = LaunchUser.learner(unique("refused"), locale="en")

    page.goto(
        platform.course_page_url(
            learner,
            message_type=DEEP_LINKING,
            auth_options={"deep_linking_settings": DEEP_LINKING_SETTINGS},
        )
    )
    frame = wait_for_tool_page(page, f"{tool_url}/lti/launch", "Not allowed", "403 page")
    assert read_error(frame)[1] == "forbidden"
    assert_no_axe_violations(frame, "learner's Deep Linking launch (403)")

    page.goto(
        platform.course_page_url(
            learner,
            resource_link_id=unique("link"),
            auth_options={"custom": {"dataide_item": "m99-inconnu"}},
        )
    )
    frame = wait_for_tool_page(page, f"{tool_url}/lti/launch", "unknown content", "404 page")
    assert read_error(frame)[1] == "item_unknown"
    assert_no_axe_violations(frame, "unknown item (404)")
    assert_fits_phone(page, frame, "unknown item (404)")

    # A forged launch token: the session has ended.
    course = platform.course_page_url(
        learner, resource_link_id=unique("link"), auth_options={"custom": placement_keys()}
    )
    page.goto(course)
    frame = wait_for_tool_page(page, f"{tool_url}/lti/launch", MODULE_TITLE, "module page")
    frame.evaluate(
        """() => document.querySelectorAll("input[name=launch_token]").forEach(
            (input) => { input.value = input.value.slice(0, -2) + "xx"; })"""
    )
    mark_stale(frame)
    frame.locator(".toc button").nth(1).click()
    frame = wait_for_tool_page(
        page, f"{tool_url}/learn/section", "Your session has ended", "forged token"
    )
    assert read_error(frame)[1] == "launch_token_invalid"
    assert_no_axe_violations(frame, "forged launch token (401)")

    # The launch gone from the store (expired): the session has expired.
    page.goto(course)
    frame = wait_for_tool_page(page, f"{tool_url}/lti/launch", MODULE_TITLE, "module again")
    token = frame.locator("input[name=launch_token]").first.input_value()
    tokens = embedded.app.extensions["dataide_lti"].tokens
    launch_id = tokens._serializer.loads(token)  # the launch id behind the token
    embedded.app.extensions["dataide_store"].delete(LAUNCH_PREFIX + launch_id)
    mark_stale(frame)
    frame.locator(".toc button").nth(1).click()
    frame = wait_for_tool_page(
        page, f"{tool_url}/learn/section", "Your session has expired", "expired launch"
    )
    assert read_error(frame)[1] == "launch_token_expired"
    assert_no_axe_violations(frame, "expired launch (401)")
